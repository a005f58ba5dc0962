"""The token cipher: fixed vectors, binding to the row, tampering, rotation, opacity."""

from __future__ import annotations

import base64
import logging
import traceback

import pytest
from cryptography.fernet import Fernet, MultiFernet

from shared import errors
from shared.cipher import Sealed, TokenCipher
from shared.errors import InvalidToken

K1 = base64.urlsafe_b64encode(bytes(range(32)))
K2 = base64.urlsafe_b64encode(bytes(range(32, 64)))
CONN = "6f1c2a3e-0000-4000-8000-000000000001"
ORG = "org_fixed"
TOKEN = "1//0gRefreshTokenExample"
T_V2 = 1_700_000_000
T_V1 = 1_600_000_000

# Sealed once with the keys above at the injected times; the format must not drift.
VECTOR_V2 = (
    b"2:gAAAAABlU_EAvaF0tCcTvochU_yPTA3hLF2XWfV7QYMXGqug_gS5q_gW_fJt5lJWdBWLOO0vtQCdD77uqUM1"
    b"b5ZJtKDluYxON27bOyEB8CY-QLHzBl8vGNFwYoJBVQbaku0Zy6IPTIagbhkW9BQ-uu9CFKM8yT4DWx7XnnOf5Lxm"
    b"_QM2Ts8o0HrlTdx6BEImyh9EHPnlEloe"
)
VECTOR_V1 = (
    b"1:gAAAAABfXhAAwl1AJkQ3ouW7Uznlf8ticdPOvH5usVCJljJA5THylrT8jKD-Smi91JiS02fXySmaR2evMFvg"
    b"QaJOL8Pjr1szrAVPP_pDdMmQsUE08H9i1Q5sKt2PL0so2-eT4dYbmcVr0aR0M__VmvMgk6avjRBs8wGkqvMBzJ"
    b"AFhRv6XKbUhk2gjbZOAkhkDUaY8sI0Fu4y"
)
ENVELOPE = (
    b"\x01"
    + b"\x00\x0drefresh_token"
    + b"\x00\x09org_fixed"
    + b"\x00\x24"
    + CONN.encode()
    + TOKEN.encode()
)


def cipher(*versions: str, at: float = T_V2) -> TokenCipher:
    keys = {"1": K1, "2": K2}
    return TokenCipher([(v, keys[v]) for v in versions], clock=lambda: at)


def fresh_cipher(n: int = 2) -> TokenCipher:
    ring = [(str(v), Fernet.generate_key()) for v in range(n, 0, -1)]
    return TokenCipher(ring)


# ---------------------------------------------------------------- fixed vectors


def test_fixed_vectors_open_with_their_keys() -> None:
    both = cipher("2", "1")
    assert both.decrypt(VECTOR_V2, connection_id=CONN, org_id=ORG) == TOKEN
    assert both.decrypt(VECTOR_V1, connection_id=CONN, org_id=ORG) == TOKEN
    assert cipher("1").decrypt(VECTOR_V1, connection_id=CONN, org_id=ORG) == TOKEN


def test_fixed_vector_envelope_and_time_are_exact() -> None:
    version, _, token = VECTOR_V2.partition(b":")
    assert version == b"2"
    assert Fernet(K2).decrypt(token) == ENVELOPE
    assert Fernet(K2).extract_timestamp(token) == T_V2


def test_injected_clock_sets_the_fernet_timestamp() -> None:
    sealed = cipher("2", "1", at=T_V2 + 0.9).encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    assert sealed.key_version == "2"
    version, _, token = sealed.ciphertext.partition(b":")
    assert version == b"2"
    assert Fernet(K2).extract_timestamp(token) == T_V2
    assert Fernet(K2).decrypt(token) == ENVELOPE


def test_newest_key_encrypts_and_every_key_decrypts() -> None:
    old = cipher("1", at=T_V1)
    sealed_old = old.encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    both = cipher("2", "1")
    sealed_new = both.encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    assert (sealed_old.key_version, sealed_new.key_version) == ("1", "2")
    assert both.decrypt(sealed_old.ciphertext, connection_id=CONN, org_id=ORG) == TOKEN
    # The old key alone cannot open what the new one sealed.
    with pytest.raises(InvalidToken):
        old.decrypt(sealed_new.ciphertext, connection_id=CONN, org_id=ORG)


def test_round_trips_any_text_including_empty() -> None:
    c = fresh_cipher()
    for token in ("", "ya29.a0AfB_byC-x", "ünïcødé ✓", "x" * 4096):
        sealed = c.encrypt(token, connection_id=CONN, org_id=ORG, purpose="access_token")
        assert (
            c.decrypt(sealed.ciphertext, connection_id=CONN, org_id=ORG, purpose="access_token")
            == token
        )


def test_each_seal_is_fresh() -> None:
    c = fresh_cipher()
    a = c.encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    b = c.encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    assert a.ciphertext != b.ciphertext


# ---------------------------------------------------------------- binding


def test_ciphertext_swapped_between_two_connections_is_refused() -> None:
    c = fresh_cipher()
    other = "6f1c2a3e-0000-4000-8000-000000000002"
    a = c.encrypt("token-of-a", connection_id=CONN, org_id=ORG)
    b = c.encrypt("token-of-b", connection_id=other, org_id=ORG)
    with pytest.raises(InvalidToken):
        c.decrypt(a.ciphertext, connection_id=other, org_id=ORG)
    with pytest.raises(InvalidToken):
        c.decrypt(b.ciphertext, connection_id=CONN, org_id=ORG)
    # Each still opens on its own row.
    assert c.decrypt(a.ciphertext, connection_id=CONN, org_id=ORG) == "token-of-a"
    assert c.decrypt(b.ciphertext, connection_id=other, org_id=ORG) == "token-of-b"


@pytest.mark.parametrize(
    ("connection_id", "org_id", "purpose"),
    [
        (CONN, "org_other", "refresh_token"),
        (CONN, ORG, "access_token"),
        # Length prefixes keep field boundaries exact: moving a character across fails.
        (CONN[:-1], ORG + CONN[-1], "refresh_token"),
        (CONN, "org_fixe", "drefresh_token"),
    ],
)
def test_binding_to_org_and_purpose(connection_id: str, org_id: str, purpose: str) -> None:
    with pytest.raises(InvalidToken):
        cipher("2", "1").decrypt(
            VECTOR_V2, connection_id=connection_id, org_id=org_id, purpose=purpose
        )


# ---------------------------------------------------------------- tampering


@pytest.mark.parametrize("extra", [0, 16, 32])
def test_any_tampered_byte_is_refused(extra: int) -> None:
    # Token lengths chosen so the Fernet bytes are 0, 1 and 2 mod 3: with padding,
    # base64's last character has slack bits that Fernet alone would ignore.
    c = cipher("2", "1")
    token = TOKEN + "x" * extra
    sealed = VECTOR_V2 if not extra else c.encrypt(token, connection_id=CONN, org_id=ORG).ciphertext
    raw = base64.urlsafe_b64decode(sealed.partition(b":")[2])
    assert len(raw) % 3 == (extra // 16) % 3
    assert c.decrypt(sealed, connection_id=CONN, org_id=ORG) == token
    refused = 0
    for i in range(len(sealed)):
        for mask in (0x01, 0x02, 0x04, 0x20, 0x80):
            tampered = bytearray(sealed)
            tampered[i] ^= mask
            with pytest.raises(InvalidToken):
                c.decrypt(bytes(tampered), connection_id=CONN, org_id=ORG)
            refused += 1
    assert refused == 5 * len(sealed)


def test_inserted_dropped_or_truncated_bytes_are_refused() -> None:
    c = cipher("2", "1")
    _, _, token = VECTOR_V2.partition(b":")
    variants = [
        VECTOR_V2[:-1],
        VECTOR_V2 + b"=",
        VECTOR_V2 + b"\n",
        VECTOR_V2[:10] + b"!" + VECTOR_V2[10:],
        VECTOR_V2[:10] + VECTOR_V2[11:],
        b"2:" + token[:40],
        b"2:",
        b"",
        token,  # no version prefix
        b"9:" + token,  # a version not in the keyring
        b"1:" + token,  # the wrong key
        b"2::" + token,
    ]
    for variant in variants:
        with pytest.raises(InvalidToken):
            c.decrypt(variant, connection_id=CONN, org_id=ORG)


def test_ciphertext_of_a_foreign_keyring_is_refused() -> None:
    sealed = fresh_cipher().encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    with pytest.raises(InvalidToken):
        fresh_cipher().decrypt(sealed.ciphertext, connection_id=CONN, org_id=ORG)


# ---------------------------------------------------------------- rotation


def test_rotate_reseals_with_the_newest_key_and_keeps_the_binding() -> None:
    old = cipher("1", at=T_V1)
    sealed = old.encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    both = cipher("2", "1")
    rotated = both.rotate(sealed.ciphertext, connection_id=CONN, org_id=ORG)
    assert rotated.key_version == "2"
    assert rotated.ciphertext.startswith(b"2:")
    assert cipher("2").decrypt(rotated.ciphertext, connection_id=CONN, org_id=ORG) == TOKEN
    with pytest.raises(InvalidToken):
        both.rotate(sealed.ciphertext, connection_id="another", org_id=ORG)


def test_token_from_the_old_key_decrypts_after_rotation_like_multifernet() -> None:
    # Same contract as MultiFernet.rotate: after adding a key, old ciphertexts still open.
    k_old, k_new = Fernet.generate_key(), Fernet.generate_key()
    sealed = TokenCipher([("1", k_old)]).encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    after = TokenCipher([("2", k_new), ("1", k_old)])
    assert after.decrypt(sealed.ciphertext, connection_id=CONN, org_id=ORG) == TOKEN
    raw = sealed.ciphertext.partition(b":")[2]
    assert MultiFernet([Fernet(k_new), Fernet(k_old)]).rotate(raw)  # same key material


# ---------------------------------------------------------------- opacity


def test_every_failure_is_the_same_opaque_error(caplog: pytest.LogCaptureFixture) -> None:
    c = cipher("2", "1")
    failures: list[InvalidToken] = []
    cases = [
        lambda: c.decrypt(VECTOR_V2, connection_id="x", org_id=ORG),
        lambda: c.decrypt(VECTOR_V2[:-3], connection_id=CONN, org_id=ORG),
        lambda: c.decrypt(b"garbage \xff\xfe", connection_id=CONN, org_id=ORG),
        lambda: c.decrypt(VECTOR_V2, connection_id="", org_id=ORG),
        lambda: c.encrypt(TOKEN, connection_id=CONN, org_id=""),
        lambda: c.encrypt(TOKEN, connection_id=CONN, org_id=ORG, purpose="p" * 70000),
    ]
    caplog.set_level(logging.DEBUG)
    for case in cases:
        with pytest.raises(InvalidToken) as info:
            case()
        failures.append(info.value)
    assert {str(e) for e in failures} == {"A stored credential could not be read."}
    for exc in failures:
        assert isinstance(exc, errors.CosmaError)
        assert exc.__cause__ is None and exc.__context__ is None
        rendered = "".join(traceback.format_exception(exc))
        for secret in (TOKEN, VECTOR_V2.decode()[:20], K1.decode(), K2.decode(), "gAAAAA"):
            assert secret not in rendered
    assert caplog.records == []


def test_sealed_repr_hides_the_ciphertext() -> None:
    sealed = fresh_cipher().encrypt(TOKEN, connection_id=CONN, org_id=ORG)
    assert isinstance(sealed, Sealed)
    assert "gAAAA" not in repr(sealed) and sealed.ciphertext.decode() not in repr(sealed)


def test_a_bad_keyring_is_refused_without_echoing_keys() -> None:
    for ring in ([], [("1", b"not-a-key")], [("1", K1), ("1", K2)], [("a:b", K1)]):
        with pytest.raises(errors.Unavailable) as info:
            TokenCipher(ring)
        assert "not-a-key" not in str(info.value)
    assert TokenCipher([("2", K2), ("1", K1)]).versions == ["2", "1"]
