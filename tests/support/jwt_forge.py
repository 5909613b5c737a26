"""Tokens an attacker could send: unsigned, signed with the wrong key or algorithm, stale.

RS256 signing is done here with plain integers (no crypto package needed): a throwaway
1024-bit key is plenty for a token the server must refuse anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

# DER prefix of DigestInfo for SHA-256 (RFC 8017, section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(header: dict[str, Any], claims: dict[str, Any]) -> str:
    compact = {"separators": (",", ":")}
    return (
        b64url(json.dumps(header, **compact).encode())  # type: ignore[arg-type]
        + "."
        + b64url(json.dumps(claims, **compact).encode())  # type: ignore[arg-type]
    )


def claims_for(
    user_id: uuid.UUID | str,
    *,
    issuer: str,
    audience: str,
    lifetime_s: int = 600,
    issued_ago_s: int = 0,
) -> dict[str, Any]:
    now = int(time.time()) - issued_ago_s
    return {
        "sub": str(user_id),
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "jti": uuid.uuid4().hex,
    }


_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


def hs256(claims: dict[str, Any], secret: str | bytes, alg: str = "HS256") -> str:
    """An HMAC-signed token (HS256 unless ``alg`` names another HMAC algorithm)."""
    key = secret.encode() if isinstance(secret, str) else secret
    signing_input = _segments({"alg": alg, "typ": "JWT"}, claims)
    signature = hmac.new(key, signing_input.encode(), _HMAC[alg]).digest()
    return f"{signing_input}.{b64url(signature)}"


def signed_parts(token: str) -> tuple[bytes, bytes]:
    """(signing input, signature bytes) of a compact token."""
    head, _, signature = token.rpartition(".")
    return head.encode(), base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


def unsigned(claims: dict[str, Any], alg: str = "none") -> str:
    return _segments({"alg": alg, "typ": "JWT"}, claims) + "."


def _is_probable_prime(n: int, rounds: int = 40) -> bool:
    if n < 4:
        return n in (2, 3)
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d //= 2
        r += 1
    for _ in range(rounds):
        a = secrets.randbelow(n - 3) + 2
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int) -> int:
    while True:
        candidate = secrets.randbits(bits) | (1 << (bits - 1)) | 1
        if _is_probable_prime(candidate):
            return candidate


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_int(n: int) -> bytes:
    raw = n.to_bytes(n.bit_length() // 8 + 1, "big")  # leading zero keeps it positive
    return _der(0x02, raw)


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int
    d: int

    @classmethod
    def generate(cls, bits: int = 1024) -> RsaKey:
        e = 65537
        while True:
            p, q = _prime(bits // 2), _prime(bits // 2)
            phi = (p - 1) * (q - 1)
            if p != q and phi % e:
                return cls(n=p * q, e=e, d=pow(e, -1, phi))

    def public_pem(self) -> str:
        """SubjectPublicKeyInfo PEM, what a server would publish (and an attacker can read)."""
        rsa_public = _der(0x30, _der_int(self.n) + _der_int(self.e))
        algorithm = _der(0x30, bytes.fromhex("06092a864886f70d010101") + bytes.fromhex("0500"))
        spki = _der(0x30, algorithm + _der(0x03, b"\x00" + rsa_public))
        body = base64.encodebytes(spki).decode().replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"

    def sign_rs256(self, message: bytes) -> bytes:
        size = (self.n.bit_length() + 7) // 8
        digest_info = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        padded = b"\x00\x01" + b"\xff" * (size - len(digest_info) - 3) + b"\x00" + digest_info
        return pow(int.from_bytes(padded, "big"), self.d, self.n).to_bytes(size, "big")

    def verify_rs256(self, message: bytes, signature: bytes) -> bool:
        size = (self.n.bit_length() + 7) // 8
        recovered = pow(int.from_bytes(signature, "big"), self.e, self.n).to_bytes(size, "big")
        return recovered.endswith(_SHA256_DIGEST_INFO + hashlib.sha256(message).digest())


def rs256(claims: dict[str, Any], key: RsaKey) -> str:
    signing_input = _segments({"alg": "RS256", "typ": "JWT"}, claims)
    return f"{signing_input}.{b64url(key.sign_rs256(signing_input.encode()))}"


def tamper(token: str) -> str:
    """The same header and claims with the signature's bytes changed."""
    head, _, signature = token.rpartition(".")
    flipped = bytes(
        b ^ 0x01 for b in base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
    )
    return f"{head}.{b64url(flipped)}"
