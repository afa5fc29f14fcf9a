"""The proof of the HELLO/AUTH challenge-response: both sides compute it the same way."""

import hashlib
import hmac


def proof(key: str, nonce: str) -> str:
    """The lowercase hex HMAC-SHA256 of the nonce's ASCII bytes keyed with the key's."""
    return hmac.new(key.encode("ascii"), nonce.encode("ascii"), hashlib.sha256).hexdigest()
