"""The contract's examples, fed whole, one byte at a time and with trailing bytes."""

import datetime

import pytest

from domain import Bet
from protocol import (
    Auth,
    Bets,
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
)

PEREZ = Bet(1, "Juan", "Pérez, hijo", "30904465", datetime.date(1999, 3, 17), 7574)
NUNEZ = Bet(1, "Ana", "Núñez;=%", "12", datetime.date(1980, 1, 2), 0)

REQUESTS = [
    (
        b"BETS=1;AGENCY=1,FIRST_NAME=Juan,LAST_NAME=P\xc3\xa9rez%2C hijo,DOCUMENT=30904465,"
        b"BIRTHDATE=1999-03-17,NUMBER=7574\n",
        Bets((PEREZ,)),
    ),
    (
        b"BETS=2,SEQ=40;AGENCY=1,FIRST_NAME=Juan,LAST_NAME=P\xc3\xa9rez%2C hijo,"
        b"DOCUMENT=30904465,BIRTHDATE=1999-03-17,NUMBER=7574;AGENCY=1,FIRST_NAME=Ana,"
        b"LAST_NAME=N\xc3\xba\xc3\xb1ez%3B%3D%25,DOCUMENT=12,BIRTHDATE=1980-01-02,NUMBER=0\n",
        Bets((PEREZ, NUNEZ), seq=40),
    ),
    (b"END,AGENCY=3\n", End(3)),
    (b"WINNERS,AGENCY=3\n", Winners(3)),
    (b"WINNERS,AGENCY=3,OFFSET=900\n", Winners(3, 900)),
    (b"RESUME,AGENCY=12\n", Resume(12)),
    (b"HELLO,AGENCY=4\n", Hello(4)),
    (b"AUTH,AGENCY=4,PROOF=9f86d081884c7d65\n", Auth(4, "9f86d081884c7d65")),
    (b"PING\n", Ping()),
]

RESPONSES = [
    (b"RESULT=success,MESSAGE=2\n", Response("success", "2")),
    (b"RESULT=success,MESSAGE=0\n", Response("success", "0")),
    (
        b"RESULT=success,MESSAGE=2,DOCUMENTS=30904465;12\n",
        Response("success", "2", ("30904465", "12")),
    ),
    (b"RESULT=success,MESSAGE=0,DOCUMENTS=\n", Response("success", "0", ())),
    (b"RESULT=wait,MESSAGE=draw not done yet\n", Response("wait", "draw not done yet")),
    (b"RESULT=success,MESSAGE=PONG\n", Response("success", "PONG")),
    (
        b"RESULT=wait,MESSAGE=server busy,RETRY_MS=250\n",
        Response("wait", "server busy", None, 250),
    ),
    (
        b"RESULT=fail,MESSAGE=bet 3: NUMBER 12000 is not in 0..9999%2C sorry\n",
        Response("fail", "bet 3: NUMBER 12000 is not in 0..9999, sorry"),
    ),
]


def lines_fed(data: bytes, chunk: int) -> list[bytes]:
    buffer = LineBuffer()
    lines = []
    for i in range(0, len(data), chunk):
        buffer.feed(data[i : i + chunk])
        while (line := buffer.next_line()) is not None:
            lines.append(line)
    return lines


@pytest.mark.parametrize(("wire", "message"), REQUESTS)
def test_request_encodes_to_its_golden_bytes(wire, message):
    assert encode(message) == wire


@pytest.mark.parametrize(("wire", "message"), RESPONSES)
def test_response_encodes_to_its_golden_bytes(wire, message):
    assert encode(message) == wire


@pytest.mark.parametrize("chunk", [len(b"x" * 9000), 1])
@pytest.mark.parametrize(("wire", "message"), REQUESTS)
def test_request_decodes_whole_and_byte_by_byte(wire, message, chunk):
    assert [decode_request(line) for line in lines_fed(wire, chunk)] == [message]


@pytest.mark.parametrize("chunk", [9000, 1])
@pytest.mark.parametrize(("wire", "message"), RESPONSES)
def test_response_decodes_whole_and_byte_by_byte(wire, message, chunk):
    assert [decode_response(line) for line in lines_fed(wire, chunk)] == [message]


@pytest.mark.parametrize(("wire", "message"), REQUESTS)
def test_trailing_bytes_stay_buffered_for_the_next_message(wire, message):
    buffer = LineBuffer()
    buffer.feed(wire + b"PING\nEND,AGE")
    assert decode_request(buffer.next_line()) == message
    assert decode_request(buffer.next_line()) == Ping()
    assert buffer.next_line() is None
    assert buffer.has_partial


def test_crlf_line_end_is_accepted():
    assert lines_fed(b"END,AGENCY=3\r\n", 1) == [b"END,AGENCY=3"]
    assert decode_request(b"END,AGENCY=3\r") == End(3)


def test_all_messages_in_one_chunk_decode_in_order():
    wire = b"".join(w for w, _ in REQUESTS)
    assert [decode_request(x) for x in lines_fed(wire, len(wire))] == [m for _, m in REQUESTS]


REFUSED = [
    (
        b"BETS=2;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,NUMBER=1",
        "announces 2 bets but 1",
    ),
    (b"BETS=0", "at least 1"),
    (b"BETS=x;", "BETS 'x' is not a non-negative integer"),
    (
        b"BETS=1,SEQ=-1;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,NUMBER=1",
        "SEQ '-1'",
    ),
    (
        b"BETS=1,FOO=1;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,NUMBER=1",
        "unknown key 'FOO'",
    ),
    (
        b"BETS=1;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=1999-02-30,NUMBER=1",
        "bet 1: BIRTHDATE '1999-02-30' is not a date",
    ),
    (
        b"BETS=1;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,NUMBER=+1",
        "bet 1: NUMBER '+1' is not a non-negative integer",
    ),
    (
        b"BETS=1;AGENCY=1,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01",
        "bet 1: missing key 'NUMBER'",
    ),
    (
        b"BETS=1;AGENCY=1,AGENCY=2,FIRST_NAME=a,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,"
        b"NUMBER=1",
        "bet 1: duplicate key 'AGENCY'",
    ),
    (
        b"BETS=1;AGENCY=1,FIRST_NAME=a%2,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,NUMBER=1",
        "bet 1: bad escape '%2'",
    ),
    (
        b"BETS=1;AGENCY=1,FIRST_NAME=%FF,LAST_NAME=b,DOCUMENT=1,BIRTHDATE=2000-01-01,NUMBER=1",
        "bet 1: escaped bytes are not valid UTF-8",
    ),
    (b"END,AGENCY=\xff", "invalid UTF-8 at byte 11"),
    (b"END,AGENCY=x", "AGENCY 'x' is not a non-negative integer"),
    (b"END", "missing key 'AGENCY'"),
    (b"END,AGENCY=1,OFFSET=2", "END: unknown key 'OFFSET'"),
    (b"PING,X=1", "PING takes no fields"),
    (b"HOLA", "unknown message type 'HOLA'"),
    (b"", "empty message"),
    (b"A" * 8192, "8192-byte limit"),
]


@pytest.mark.parametrize(("line", "reason"), REFUSED)
def test_bad_request_is_refused_with_a_precise_reason(line, reason):
    with pytest.raises(ProtocolError) as info:
        decode_request(line)
    assert reason in str(info.value)


@pytest.mark.parametrize(
    "line",
    [b"RESULT=maybe,MESSAGE=x", b"RESULT=success", b"MESSAGE=x", b"RESULT=fail,MESSAGE=x,Y=1"],
)
def test_bad_response_is_refused(line):
    with pytest.raises(ProtocolError):
        decode_response(line)


def test_message_of_exactly_the_limit_is_accepted_one_byte_more_is_not():
    name = "x" * 100
    bet = Bet(1, name, name, "1", datetime.date(2000, 1, 1), 1)
    line = encode(Bets((bet,)))
    pad = 8192 - len(line)
    fitted = encode(Bets((Bet(1, name, "y" * (100 + pad), "1", bet.birthdate, 1),)))
    assert len(fitted) == 8192
    assert lines_fed(fitted, 1) and decode_request(fitted[:-1]).bets[0].last_name.startswith("y")
    buffer = LineBuffer()
    buffer.feed(b"x" * 8192)
    with pytest.raises(ProtocolError, match="limit"):
        buffer.next_line()


def test_complete_lines_before_an_oversized_tail_come_out_before_its_error():
    buffer = LineBuffer()
    buffer.feed(b"PING\nEND,AGENCY=1\n" + b"x" * 9000)
    assert buffer.next_line() == b"PING"
    assert buffer.next_line() == b"END,AGENCY=1"
    with pytest.raises(ProtocolError, match="limit"):
        buffer.next_line()


def test_unread_lines_come_out_again_first_and_in_order():
    buffer = LineBuffer()
    buffer.feed(b"A\nB\nC\nPAR")
    first, second = buffer.next_line(), buffer.next_line()
    buffer.unread([first, second])
    assert [buffer.next_line() for _ in range(3)] == [b"A", b"B", b"C"]
    assert buffer.next_line() is None
    assert buffer.pending() == b"PAR"
