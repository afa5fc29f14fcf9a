"""Property tests: round trips for any content, the size cap, and fuzzed input."""

import contextlib
import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import Bet
from protocol import (
    MAX_MESSAGE_BYTES,
    Auth,
    Bets,
    CannotEncode,
    End,
    Hello,
    LineBuffer,
    Ping,
    ProtocolError,
    Response,
    Resume,
    Winners,
    decode_request,
    decode_response,
    encode,
    encode_bet,
    escape,
    unescape,
)

# Any Unicode but lone surrogates (they cannot be UTF-8); the reserved characters on purpose.
text = st.text(
    st.one_of(st.sampled_from("%,;=\r\n"), st.characters(exclude_categories=("Cs",))),
    max_size=30,
)
ints = st.integers(min_value=0, max_value=10**18 - 1)
bets = st.builds(
    Bet,
    agency=ints,
    first_name=text,
    last_name=text,
    document=text,
    birthdate=st.dates(min_value=datetime.date(1000, 1, 1)),
    number=ints,
)
requests = st.one_of(
    st.builds(Bets, st.lists(bets, min_size=1, max_size=5).map(tuple), st.none() | ints),
    st.builds(End, ints),
    st.builds(Winners, ints, ints),
    st.builds(Resume, ints),
    st.builds(Hello, ints),
    st.builds(Auth, ints, text),
    st.just(Ping()),
)
responses = st.builds(
    Response,
    st.sampled_from(["success", "fail", "wait"]),
    text,
    st.none() | st.lists(text.filter(bool), max_size=5).map(tuple),
)


@given(text)
def test_escape_round_trips_and_leaves_no_reserved_character(value):
    escaped = escape(value)
    assert not set(escaped) & set(",;=\r\n")
    assert unescape(escaped) == value


@given(requests)
def test_every_request_round_trips(message):
    wire = encode(message)
    assert wire.endswith(b"\n") and wire.count(b"\n") == 1
    assert decode_request(wire[:-1]) == message


@given(responses)
def test_every_response_round_trips(message):
    wire = encode(message)
    assert wire.count(b"\n") == 1
    assert decode_response(wire[:-1]) == message


@settings(max_examples=50)
@given(st.lists(bets, min_size=1, max_size=400).map(tuple))
def test_encoding_a_batch_never_silently_exceeds_the_cap(batch):
    try:
        wire = encode(Bets(batch, seq=0))
    except CannotEncode:
        return
    assert len(wire) <= MAX_MESSAGE_BYTES


@given(st.binary(max_size=600))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data):
    for decode in (decode_request, decode_response):
        with contextlib.suppress(ProtocolError):
            decode(data)


@given(st.binary(max_size=600), st.integers(min_value=1, max_value=50))
def test_arbitrary_stream_frames_or_raises_protocol_error(data, chunk):
    buffer = LineBuffer()
    try:
        for i in range(0, len(data), chunk):
            buffer.feed(data[i : i + chunk])
            while (line := buffer.next_line()) is not None:
                with contextlib.suppress(ProtocolError):
                    decode_request(line)
        buffer.close()
    except ProtocolError:
        pass


@given(bets, st.sampled_from(["", "%", "+", "٣", "-"]))
def test_the_fast_bet_decoder_agrees_with_the_general_one(bet, noise):
    from protocol.codec import _decode_any_bet, _decode_plain_bet

    body = encode_bet(bet).decode()
    for variant in (body, body.replace("NUMBER=", "NUMBER=" + noise)):
        fast = _decode_plain_bet(variant)
        try:
            general = _decode_any_bet(variant, 1)
        except ProtocolError:
            assert fast is None
        else:
            if "%" in variant:  # escaped values are the general decoder's job
                assert fast is None
            else:  # the common case must take the fast path, and agree
                assert fast == general
