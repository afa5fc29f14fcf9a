"""One-call conveniences over BetStore.commit for tests and benches (production commits
rounds of several connections: server/connection.py)."""

from collections.abc import Sequence

from domain import DEFAULT_WINNING_NUMBER, Bet
from storage import BetStore, Finished, Round, Stored


def store_many(store: BetStore, agency: int, batches: Sequence[tuple[Sequence[Bet], int | None]]):
    """Several batches of one agency in one commit; each batch's outcome."""
    work = Round(groups=[(agency, batches)], ends=[], agencies=0, winning_number=0)
    return store.commit(work).bets[0]


def store(store: BetStore, agency: int, bets: Sequence[Bet], seq: int | None = None) -> Stored:
    """One batch; raises its outcome when it is not Stored."""
    (outcome,) = store_many(store, agency, [(bets, seq)])
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


def finish(
    store: BetStore, agency: int, agencies: int, winning_number: int = DEFAULT_WINNING_NUMBER
) -> Finished:
    """The agency's END in a lottery of `agencies`; the draw when it is the last."""
    work = Round(groups=[], ends=[agency], agencies=agencies, winning_number=winning_number)
    return store.commit(work).ends[0]
