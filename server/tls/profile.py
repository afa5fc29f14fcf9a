"""The server's TLS configuration: Mozilla's Server Side TLS "intermediate" profile.

TLS 1.2 and 1.3 only; TLS 1.2 suites forward-secret (ECDHE) and AEAD (GCM, ChaCha20-Poly1305)
only (every TLS 1.3 suite is both); key exchange groups X25519, P-256 and P-384; the client
picks the suite (the profile's "server_preferred_order: false"). Python's defaults differ:
a default server context still offers two CBC suites and the secp521r1/X448 groups.
"""

import ctypes
import logging
import os
import ssl
import stat

from common.logs import event

log = logging.getLogger(__name__)

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
GROUPS = "X25519:P-256:P-384"
_SSL_CTRL_SET_GROUPS_LIST = 92  # OpenSSL's SSL_CTX_set1_groups_list() is this ctrl


class TLSConfigError(Exception):
    """The certificate or key cannot be used (names the key and the file)."""


def server_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A server context with the profile and the certificate chain loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # Renegotiation is a client-triggered handshake on a live connection: CPU for free.
    # No session tickets: our clients never resume, and a ticket key would be one more secret.
    context.options |= ssl.OP_NO_RENEGOTIATION | ssl.OP_NO_COMPRESSION | ssl.OP_NO_TICKET
    context.num_tickets = 0
    _set_groups(context, GROUPS)
    for key, path in (("TLS_CERT", cert_path), ("TLS_KEY", key_path)):
        if not os.path.isfile(path):
            raise TLSConfigError(f"{key}: no file at {path}")
    try:
        context.load_cert_chain(cert_path, key_path)
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(
            f"TLS_CERT/TLS_KEY: cannot load {cert_path} with {key_path}: {exc}"
        ) from None
    return context


def key_mode_warning(key_path: str) -> str | None:
    """Why the key file's permissions are too open, if they are (owner-only is expected)."""
    try:
        mode = stat.S_IMODE(os.stat(key_path).st_mode)
    except OSError:
        return None  # server_context names the missing file
    if mode & 0o077:
        return f"TLS_KEY {key_path} is readable by others (mode {mode:04o}): chmod 600 it"
    return None


def _set_groups(context: ssl.SSLContext, groups: str) -> None:
    """Offer exactly these key exchange groups.

    Python 3.13 has no setter for a list of groups (set_ecdh_curve sets one), so this calls
    OpenSSL's own SSL_CTX_set1_groups_list through the library Python's ssl module is linked
    with, on the SSL_CTX the context wraps. It first checks it found the right object (its
    options must read back as the context's); if anything does not match it falls back to
    P-256 alone, which the profile also allows, with a WARNING.
    """
    try:
        import _ssl

        lib = ctypes.CDLL(_ssl.__file__)
        lib.SSL_CTX_get_options.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_options.restype = ctypes.c_uint64
        lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_char_p]
        lib.SSL_CTX_ctrl.restype = ctypes.c_long
        # The PySSLContext struct: the object header, then the SSL_CTX pointer.
        pointer = ctypes.c_void_p.from_address(id(context) + object.__basicsize__).value
        if not pointer or lib.SSL_CTX_get_options(pointer) != context.options:
            raise OSError("the context's SSL_CTX was not where expected")
        if lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_GROUPS_LIST, 0, groups.encode()) != 1:
            raise OSError(f"OpenSSL refused the groups {groups}")
    except (OSError, AttributeError, ImportError) as exc:
        context.set_ecdh_curve("prime256v1")
        log.warning(event("tls", "success", warning=f"key exchange limited to P-256: {exc}"))
