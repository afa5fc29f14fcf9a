"""The socket layer over a real socketpair."""

import os
import signal
import socket
import threading

import pytest

from protocol import ProtocolError
from transport import ConnectionClosed, Interrupted, MessageStream

MESSAGES = b"PING\nEND,AGENCY=3\r\nRESULT=success,MESSAGE=P%C3%89RE\xc3\x89\n"


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_reads_whole_lines_when_writes_split_at_every_byte_boundary(pair):
    a, b = pair
    for cut in range(1, len(MESSAGES)):
        stream = MessageStream(b)
        a.sendall(MESSAGES[:cut])
        writer = threading.Thread(target=a.sendall, args=(MESSAGES[cut:],))
        writer.start()
        got = [stream.read_line(timeout=5) for _ in range(3)]
        writer.join()
        assert got == [b"PING", b"END,AGENCY=3", b"RESULT=success,MESSAGE=P%C3%89RE\xc3\x89"]


def test_eof_between_messages_is_a_clean_close(pair):
    a, b = pair
    a.sendall(b"PING\n")
    a.shutdown(socket.SHUT_WR)
    stream = MessageStream(b)
    assert stream.read_line(timeout=5) == b"PING"
    with pytest.raises(ConnectionClosed):
        stream.read_line(timeout=5)


def test_eof_in_the_middle_of_a_message_is_an_error_and_never_a_message(pair):
    a, b = pair
    a.sendall(b"END,AGEN")
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ProtocolError, match="middle of a message"):
        MessageStream(b).read_line(timeout=5)


def test_no_complete_message_before_the_deadline_times_out(pair):
    a, b = pair
    a.sendall(b"PIN")
    with pytest.raises(TimeoutError):
        MessageStream(b).read_line(timeout=0.05)


def test_over_long_message_is_refused_while_buffering(pair):
    a, b = pair
    threading.Thread(target=a.sendall, args=(b"x" * 20000,), daemon=True).start()
    with pytest.raises(ProtocolError, match="limit"):
        MessageStream(b).read_line(timeout=5)


def test_send_writes_every_byte(pair):
    a, b = pair
    big = b"y" * 3_000_000 + b"\n"
    reader = MessageStream(b, max_bytes=len(big) + 1)
    writer = threading.Thread(target=MessageStream(a).send, args=(big,))
    writer.start()
    assert reader.read_line(timeout=10) == big[:-1]
    writer.join()


def test_wake_up_fd_lets_the_stop_predicate_interrupt_a_wait(pair):
    _, b = pair
    rfd, wfd = os.pipe()
    os.set_blocking(rfd, False)
    stopping = threading.Event()
    stream = MessageStream(b, wake_fd=rfd)

    def request_stop():
        stopping.set()
        os.write(wfd, bytes([signal.SIGTERM]))

    threading.Timer(0.05, request_stop).start()
    with pytest.raises(Interrupted):
        stream.read_line(timeout=30, stop=lambda partial: stopping.is_set())
    os.close(rfd)
    os.close(wfd)
