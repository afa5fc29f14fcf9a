"""The exactly-once rules, without SQLite: given where each agency stands, decide what each
batch of a round does and which rows it adds. BetStore feeds it from the database."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from domain import Bet
from storage.outcomes import AgencyClosed, ReplayMismatch, SequenceGap, Stored
from storage.rows import bet_fields, db_rows


@dataclass(frozen=True)
class AgencyState:
    stored_up_to: int  # its next position (positions have no gaps)
    finished: bool


# (agency, first seq, last seq) -> {seq: the five bet fields stored there}
StoredFields = Callable[[int, int, int], dict[int, tuple]]


@dataclass
class Plan:
    """One round's rows and CSV lines, in commit order."""

    received: str  # one timestamp for the round (a per-row SQL default costs a call per row)
    drawn: bool
    rows: list[tuple] = field(default_factory=list)
    lines: list[bytes] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)  # agency -> next planned position

    def group(
        self,
        agency: int,
        state: AgencyState,
        batches: Sequence[tuple[Sequence[Bet], int | None]],
        batch_lines: Sequence[list[bytes]],
        stored_fields: StoredFields,
    ) -> list:
        """Each batch's outcome (Stored, SequenceGap, ReplayMismatch, AgencyClosed) from the
        agency's position; the new rows are added to the plan."""
        # Two connections of one agency in one round (a takeover under way): the second
        # goes on from what the first planned, as if it had committed first.
        position = self.positions.get(agency, state.stored_up_to)
        outcomes = []
        for (bets, seq), lines in zip(batches, batch_lines, strict=True):
            start = position if seq is None else seq
            if start > position:
                outcomes.append(SequenceGap(agency, position, start))
                continue
            skip = position - start
            if skip:  # a replay: what it resends must be what those positions hold
                mismatch = self._mismatch(agency, bets[:skip], start, state, stored_fields)
                if mismatch is not None:
                    outcomes.append(mismatch)
                    continue
            fresh = bets[skip:]
            if fresh and (state.finished or self.drawn):
                outcomes.append(AgencyClosed(agency, self.drawn))
                continue
            self.rows += db_rows(agency, position, fresh, self.received)
            self.lines += lines[skip:]
            position += len(fresh)
            self.positions[agency] = position
            outcomes.append(Stored(len(fresh), position))
        return outcomes

    def _mismatch(self, agency, resent, start: int, state: AgencyState, stored_fields):
        """The first resent bet that differs from what its position holds, if any. Only a
        batch that overlaps stored positions pays for the lookup."""
        held = {}
        if start < state.stored_up_to:
            held = stored_fields(agency, start, min(start + len(resent), state.stored_up_to) - 1)
        for i, bet in enumerate(resent):
            seq = start + i
            if (held.get(seq) or self._planned(agency, seq)) != bet_fields(bet):
                return ReplayMismatch(i + 1, seq)
        return None

    def _planned(self, agency: int, seq: int) -> tuple | None:
        # A replay within one round is rare: a scan costs less than indexing every row.
        for row in reversed(self.rows):
            if row[0] == agency and row[1] == seq:
                return row[2:7]
        return None
