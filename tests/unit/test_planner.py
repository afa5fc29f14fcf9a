"""The exactly-once rules alone (storage.planner), with no database: positions, replays,
gaps, closed agencies, and two groups of one agency in a round."""

from scripts.lab.sample import make_bets
from storage import AgencyClosed, ReplayMismatch, SequenceGap, Stored
from storage.planner import AgencyState, Plan
from storage.rows import bet_fields, row_lines

BETS = make_bets(1, 0, 10)


def stored(bets):
    """A stored_fields lookup over bets already at positions 0..len-1."""
    return lambda agency, first, last: {s: bet_fields(bets[s]) for s in range(first, last + 1)}


def nothing_stored(agency, first, last):
    raise AssertionError("a batch that overlaps nothing stored must not look anything up")


def group(plan, state, batches, lookup=nothing_stored):
    lines = [row_lines(list(bets)) for bets, _ in batches]
    return plan.group(1, state, batches, lines, lookup)


def test_a_fresh_batch_is_planned_at_the_agencys_position():
    plan = Plan("t", drawn=False)
    (outcome,) = group(plan, AgencyState(0, False), [(BETS[:4], 0)])
    assert outcome == Stored(4, 4)
    assert [row[1] for row in plan.rows] == [0, 1, 2, 3]
    assert plan.lines == row_lines(BETS[:4])


def test_a_batch_without_seq_goes_at_the_position():
    plan = Plan("t", drawn=False)
    assert group(plan, AgencyState(3, False), [(BETS[3:5], None)]) == [Stored(2, 5)]


def test_a_replay_of_stored_positions_plans_only_the_new_tail():
    plan = Plan("t", drawn=False)
    (outcome,) = group(plan, AgencyState(6, False), [(BETS[4:9], 4)], stored(BETS))
    assert outcome == Stored(3, 9) and [row[1] for row in plan.rows] == [6, 7, 8]


def test_a_replay_that_differs_from_what_is_stored_plans_nothing_of_it():
    plan = Plan("t", drawn=False)
    changed = BETS[5]._replace(document="1")
    (outcome,) = group(
        plan, AgencyState(6, False), [((BETS[4], changed, BETS[6]), 4)], stored(BETS)
    )
    assert isinstance(outcome, ReplayMismatch) and (outcome.index, outcome.seq) == (2, 5)
    assert plan.rows == []


def test_a_batch_past_the_position_is_a_gap():
    plan = Plan("t", drawn=False)
    (outcome,) = group(plan, AgencyState(2, False), [(BETS[5:6], 5)])
    assert isinstance(outcome, SequenceGap) and outcome.expected == 2


def test_new_bets_after_the_end_or_the_draw_are_refused_but_a_pure_replay_is_not():
    for state, drawn in ((AgencyState(3, True), False), (AgencyState(3, False), True)):
        plan = Plan("t", drawn=drawn)
        replay, fresh = group(plan, state, [(BETS[:3], 0), (BETS[3:4], 3)], stored(BETS))
        assert replay == Stored(0, 3) and isinstance(fresh, AgencyClosed)
        assert plan.rows == []


def test_a_second_group_of_the_agency_in_the_round_goes_on_from_the_first():
    plan = Plan("t", drawn=False)
    group(plan, AgencyState(0, False), [(BETS[:5], 0)])
    (outcome,) = group(plan, AgencyState(0, False), [(BETS[3:8], 3)])  # state read before
    assert outcome == Stored(3, 8)
    assert [row[1] for row in plan.rows] == list(range(8))
