"""One client connection's TLS, without I/O (h11's rule): bytes the client sent go in, the
plaintext they carried comes out; plaintext for the client goes in, the records to send it
come out. The terminator moves the bytes."""

import ssl

READ_BYTES = 64 * 1024
TLS_HANDSHAKE_RECORD = 0x16  # every TLS connection begins with a handshake record
SSL2_HELLO = 0x80  # an old client's SSLv2-format hello: TLS, refused by OpenSSL, not plaintext


class NotTLS(Exception):
    """The client's first byte is not a TLS handshake record: it speaks plaintext."""


class TLSFailure(Exception):
    """The handshake or a record failed (OpenSSL's reason)."""


class Tunnel:
    def __init__(self, context: ssl.SSLContext) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._seen_bytes = False
        self.established = False  # the handshake is complete
        self.peer_closed = False  # the client sent close_notify

    def receive(self, data: bytes) -> bytes:
        """Feed bytes from the client; return the plaintext that became readable (b"" while
        handshaking). Reads until OpenSSL wants more: decrypted bytes left pending inside it
        would be invisible to epoll."""
        if not self._seen_bytes and data:
            self._seen_bytes = True
            if data[0] not in (TLS_HANDSHAKE_RECORD, SSL2_HELLO):
                raise NotTLS()
        self._incoming.write(data)
        if not self.established:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                return b""
            except ssl.SSLError as exc:
                raise TLSFailure(_reason(exc)) from None
            self.established = True
        chunks = []
        while not self.peer_closed:
            try:
                chunk = self._tls.read(READ_BYTES)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                chunk = b""
            except ssl.SSLError as exc:
                raise TLSFailure(_reason(exc)) from None
            if not chunk:  # the client's close_notify (read says so with b"")
                self.peer_closed = True
            chunks.append(chunk)
            if not self._incoming.pending and not self._tls.pending():
                break  # nothing left to decrypt: spare the read that would say so
        return b"".join(chunks)

    def send(self, plaintext: bytes) -> None:
        """Encrypt plaintext for the client (the records come out of outgoing())."""
        try:
            self._tls.write(plaintext)
        except ssl.SSLError as exc:
            raise TLSFailure(_reason(exc)) from None

    def close(self) -> None:
        """Queue our close_notify. The peer's is never waited for."""
        try:
            self._tls.unwrap()
        except ssl.SSLWantReadError:  # the peer's close_notify has not come: not waited for
            pass
        except ssl.SSLError:  # a broken connection: nothing more to say on it
            pass

    def outgoing(self) -> bytes:
        """Records to send to the client now (handshake, data, alerts, close_notify)."""
        return self._outgoing.read()

    def version(self) -> str | None:
        return self._tls.version()


def _reason(exc: ssl.SSLError) -> str:
    # "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca (_ssl.c:1000)" -> its text
    return getattr(exc, "reason", None) or str(exc)
