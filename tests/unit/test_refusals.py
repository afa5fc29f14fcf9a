"""Refusal texts the client acts on: built and recognised in one place."""

from hypothesis import given
from hypothesis import strategies as st

from protocol import mismatched_position, replay_mismatch, speaks_for


@given(st.integers(1, 10_000), st.integers(0, 10**12))
def test_the_client_reads_back_the_position_a_replay_mismatch_names(index, seq):
    assert mismatched_position(replay_mismatch(index, seq)) == seq


def test_the_replay_mismatch_text_reads_as_it_did_on_the_wire():
    assert replay_mismatch(1, 0) == "bet 1: position 0 already holds a different bet"


def test_other_refusals_name_no_position():
    assert mismatched_position(speaks_for(2)) is None
    assert mismatched_position("agency 1 already sent END; new bets are refused") is None
