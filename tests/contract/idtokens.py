"""id_tokens for the contract tests: an EHR's signing key and JWKS, good tokens and the bad
kinds the app must refuse (forged signature, alg=none, HS256, expired, foreign issuer or
audience). Keys are made once per test session: RSA generation is slow."""

from __future__ import annotations

import base64
import json
import time
from functools import cache
from typing import Any

from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey


@cache
def ehr_key() -> RSAKey:
    """The EHR's id_token key, published in its JWKS."""
    return RSAKey.generate_key(2048, private=True)


@cache
def stranger_key() -> RSAKey:
    """A key the EHR never published: what a forger signs with."""
    return RSAKey.generate_key(2048, private=True)


def jwks() -> dict:
    public = dict(ehr_key().as_dict(private=False))
    public.update(kid=ehr_key().thumbprint(), alg="RS256", use="sig")
    return {"keys": [public]}


def claims_for(issuer: str, client_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": issuer, "aud": client_id, "sub": "dr-1", "iat": now, "exp": now + 300,
              "fhirUser": f"{issuer}/Practitioner/dr-1"}
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def signed(claims: dict[str, Any], key: RSAKey | None = None, alg: str = "RS256") -> str:
    """A token signed by `key` (default: the EHR's), with the EHR's kid in its header."""
    header = {"alg": alg, "kid": ehr_key().thumbprint()}
    return jwt.encode(header, claims, key or ehr_key(), algorithms=[alg])


def unsigned(claims: dict[str, Any]) -> str:
    """`alg: none`: no signature at all."""
    return f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(claims)}."


def hmac_signed(claims: dict[str, Any]) -> str:
    """HS256 with the EHR's public modulus as the shared secret: the classic confusion attack."""
    secret = OctKey.import_key(ehr_key().as_dict(private=False)["n"].encode())
    return jwt.encode({"alg": "HS256", "kid": ehr_key().thumbprint()}, claims, secret,
                      algorithms=["HS256"])


def _segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
