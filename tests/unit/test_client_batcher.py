"""Batching: maxAmount, the 8 KiB cap whatever the names, the last partial batch, SEQ."""

from hypothesis import given, settings
from hypothesis import strategies as st

from client.batcher import batches
from protocol import MAX_MESSAGE_BYTES, Bets, decode_request
from scripts.lab.sample import make_bets


def decoded(batch):
    message = decode_request(batch.payload[:-1])
    assert isinstance(message, Bets)
    return message


def test_batches_hold_max_amount_and_the_last_partial_one_is_sent():
    out = list(batches(make_bets(1, 0, 991), 0, 10))
    assert [b.count for b in out] == [10] * 99 + [1]
    assert [b.seq for b in out] == list(range(0, 991, 10))
    assert [bet for b in out for bet in decoded(b).bets] == make_bets(1, 0, 991)


def test_seq_starts_at_the_resumed_position():
    out = list(batches(make_bets(1, 500, 30), 500, 25))
    assert [(b.seq, b.count) for b in out] == [(500, 25), (525, 5)]
    assert decoded(out[1]).seq == 525


def test_long_multibyte_names_close_batches_before_8_kib():
    heavy = [b._replace(first_name="Ñ" * 100, last_name="%,;=é" * 20) for b in make_bets(1, 0, 300)]
    out = list(batches(heavy, 0, 1000))
    assert all(len(b.payload) <= MAX_MESSAGE_BYTES for b in out)
    assert len(out) > 1
    # Full: one more bet would not have fitted.
    assert all(len(b.payload) > MAX_MESSAGE_BYTES - 700 for b in out[:-1])
    assert sum(b.count for b in out) == 300


def test_no_bets_no_batches():
    assert list(batches([], 0, 10)) == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=100),
        min_size=1,
        max_size=150,
    ),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=0, max_value=10**12),
)
def test_any_names_never_exceed_the_cap_and_nothing_is_lost(names, max_amount, first_seq):
    bets = [
        b._replace(last_name=name)
        for b, name in zip(make_bets(1, 0, len(names)), names, strict=True)
    ]
    out = list(batches(bets, first_seq, max_amount))
    assert all(len(b.payload) <= MAX_MESSAGE_BYTES and b.count <= max_amount for b in out)
    assert [bet for b in out for bet in decoded(b).bets] == bets
    assert [b.seq for b in out] == [
        first_seq + sum(x.count for x in out[:i]) for i in range(len(out))
    ]
