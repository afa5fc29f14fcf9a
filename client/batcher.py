"""Groups bets into BETS messages of at most batch.maxAmount bets and 8192 bytes."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from domain import Bet
from protocol import MAX_MESSAGE_BYTES, bets_header, encode_bet, encode_bets


@dataclass(frozen=True)
class Batch:
    seq: int
    count: int
    payload: bytes  # the whole encoded message, \n included


def batches(bets: Iterable[Bet], first_seq: int, max_amount: int) -> Iterator[Batch]:
    """Batches in order; a batch closes when full or when one more bet would pass 8 KiB."""
    seq = first_seq
    pending: list[bytes] = []
    size = 0  # bytes of the bets and their ';' separators
    for bet in bets:
        encoded = encode_bet(bet)
        if pending and (
            len(pending) == max_amount
            or _message_size(len(pending) + 1, seq, size + len(encoded) + 1) > MAX_MESSAGE_BYTES
        ):
            yield Batch(seq, len(pending), encode_bets(pending, seq))
            seq += len(pending)
            pending, size = [], 0
        pending.append(encoded)
        size += len(encoded) + 1
    if pending:
        yield Batch(seq, len(pending), encode_bets(pending, seq))


def _message_size(count: int, seq: int, bets_size: int) -> int:
    return len(bets_header(count, seq)) + bets_size + 1
