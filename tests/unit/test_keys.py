"""Agency keys: the keys file, proofs, and constant-time verification."""

import re

import pytest

from protocol import proof
from server.keys import KeysError, load_keys, nonce

KEY = "agency-one-key-0123456789"


def keys_file(tmp_path, text):
    path = tmp_path / "agencies.keys"
    path.write_text(text)
    return path


def test_comments_and_blank_lines_are_allowed_and_the_repr_shows_no_key(tmp_path):
    keys = load_keys(keys_file(tmp_path, f"# agencies\n\n1:{KEY}  # the first\n 2 : {KEY[::-1]}\n"))
    assert len(keys) == 2
    assert KEY not in repr(keys)


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("1 agency-one-key-0123456789\n", 1, "expected <agency>:<key>"),
        ("\n0:agency-one-key-0123456789\n", 2, "positive integer"),
        ("1:short\n", 1, "16-128 characters"),
        ("1:has spaces inside the key\n", 1, "16-128 characters"),
        (f"1:{'k' * 129}\n", 1, "16-128 characters"),
        (f"1:{KEY}\n1:{KEY}\n", 2, "has a key already"),
    ],
)
def test_a_malformed_line_is_named_with_its_number(tmp_path, text, line, reason):
    path = keys_file(tmp_path, text)
    with pytest.raises(KeysError, match=rf"{re.escape(str(path))} line {line}: .*{reason}"):
        load_keys(path)


def test_a_missing_or_empty_file_is_refused(tmp_path):
    with pytest.raises(KeysError, match="cannot read"):
        load_keys(tmp_path / "nope")
    with pytest.raises(KeysError, match="holds no key"):
        load_keys(keys_file(tmp_path, "# nothing\n"))


def test_nonces_are_32_lowercase_hex_and_fresh():
    made = {nonce() for _ in range(100)}
    assert len(made) == 100 and all(re.fullmatch(r"[0-9a-f]{32}", n) for n in made)


def test_only_the_right_proof_for_the_right_agency_verifies(tmp_path):
    keys = load_keys(keys_file(tmp_path, f"1:{KEY}\n"))
    challenge = nonce()
    right = proof(KEY, challenge)
    assert keys.verify(1, challenge, right)
    assert not keys.verify(2, challenge, right)  # no key for agency 2
    assert not keys.verify(1, nonce(), right)  # another challenge
    assert not keys.verify(1, challenge, right.upper())  # lowercase hex only
    assert not keys.verify(1, challenge, right[:-1])


def test_the_proof_is_hmac_sha256_of_the_nonce_keyed_with_the_key():
    # RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    assert proof("Jefe", "what do ya want for nothing?") == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
