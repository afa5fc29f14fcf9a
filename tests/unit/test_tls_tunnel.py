"""The server's TLS profile and one connection's TLS without I/O: a real OpenSSL client and
the Tunnel exchange bytes in memory."""

import ssl

import pytest

from scripts.lab.tls import make_certs
from server.tls.profile import TLSConfigError, key_mode_warning, server_context
from server.tls.tunnel import NotTLS, TLSFailure, Tunnel


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def pair(certs):
    """(tunnel, client SSLObject, client's incoming BIO, client's outgoing BIO)."""
    tunnel = Tunnel(server_context(str(certs.cert), str(certs.key)))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = certs.client().wrap_bio(incoming, outgoing, server_hostname="localhost")
    return tunnel, client, incoming, outgoing


def handshake(tunnel, client, incoming, outgoing) -> bytes:
    """Run the handshake to the end; what the tunnel gave out as plaintext meanwhile."""
    plaintext = b""
    for _ in range(10):
        try:
            client.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        plaintext += tunnel.receive(outgoing.read())
        incoming.write(tunnel.outgoing())
        if done and tunnel.established:
            return plaintext
    raise AssertionError("the handshake did not finish")


def test_the_profile_offers_tls_1_2_and_1_3_with_forward_secret_aead_suites_only(certs):
    context = server_context(str(certs.cert), str(certs.key))
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_RENEGOTIATION
    assert not context.options & ssl.OP_CIPHER_SERVER_PREFERENCE  # the client picks
    assert context.num_tickets == 0
    for suite in context.get_ciphers():
        if suite["protocol"] == "TLSv1.3":
            continue  # every TLS 1.3 suite is AEAD with (EC)DHE
        assert suite["kea"] == "kx-ecdhe", suite["name"]
        assert suite["aead"], suite["name"]


def test_messages_cross_whole_split_and_together(pair):
    tunnel, client, incoming, outgoing = pair
    assert handshake(tunnel, client, incoming, outgoing) == b""
    assert tunnel.version() == "TLSv1.3"
    client.write(b"PING\nPI")
    client.write(b"NG\n")
    records = outgoing.read()
    # Byte by byte: a record is only readable once whole, and nothing is left pending.
    got = b"".join(tunnel.receive(records[i : i + 1]) for i in range(len(records)))
    assert got == b"PING\nPING\n"
    tunnel.send(b"RESULT=success,MESSAGE=PONG\n")
    incoming.write(tunnel.outgoing())
    assert client.read(100) == b"RESULT=success,MESSAGE=PONG\n"


def test_a_large_write_comes_out_whole_in_one_call(pair):
    tunnel, client, incoming, outgoing = pair
    handshake(tunnel, client, incoming, outgoing)
    payload = bytes(range(256)) * 300  # 76,800 bytes: five records
    client.write(payload)
    assert tunnel.receive(outgoing.read()) == payload


def test_plaintext_first_is_not_tls(pair):
    tunnel, *_ = pair
    with pytest.raises(NotTLS):
        tunnel.receive(b"PING\n")


def test_garbage_after_a_hello_is_a_tls_failure_with_a_reason(pair):
    tunnel, client, _, outgoing = pair
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    tunnel.receive(outgoing.read())
    with pytest.raises(TLSFailure) as raised:
        tunnel.receive(b"\x17\x03\x03\x00\x05hello")
    assert str(raised.value)


def test_close_notify_each_way(pair):
    tunnel, client, incoming, outgoing = pair
    handshake(tunnel, client, incoming, outgoing)
    client.write(b"PING\n")
    with pytest.raises(ssl.SSLWantReadError):  # the client's close_notify, after its data
        client.unwrap()
    assert tunnel.receive(outgoing.read()) == b"PING\n"
    assert tunnel.peer_closed
    assert tunnel.receive(b"") == b""  # and nothing loops once it has
    tunnel.close()
    incoming.write(tunnel.outgoing())
    client.unwrap()  # completes: the server's close_notify came (a clean end, not a cut)


def test_a_client_that_does_not_trust_the_ca_fails_its_handshake(certs, tmp_path):
    other = make_certs(tmp_path / "other")
    tunnel = Tunnel(server_context(str(certs.cert), str(certs.key)))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = other.client().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    tunnel.receive(outgoing.read())
    incoming.write(tunnel.outgoing())
    with pytest.raises(ssl.SSLCertVerificationError):
        client.do_handshake()
    with pytest.raises(TLSFailure, match=r"(?i)unknown.ca"):
        tunnel.receive(outgoing.read())  # the client's alert says why


def test_unusable_files_name_the_key(certs, tmp_path):
    with pytest.raises(TLSConfigError, match="TLS_KEY: no file at"):
        server_context(str(certs.cert), str(tmp_path / "missing.key"))
    with pytest.raises(TLSConfigError, match="TLS_CERT/TLS_KEY: cannot load"):
        server_context(str(certs.ca), str(certs.key))  # a certificate for another key
    loose = tmp_path / "loose.key"
    loose.write_bytes(certs.key.read_bytes())
    loose.chmod(0o640)
    assert "mode 0640" in key_mode_warning(str(loose))
    assert key_mode_warning(str(certs.key)) is None
