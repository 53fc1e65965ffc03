"""The id_token of a SMART launch, verified as OpenID Connect Core 3.1.3.7 says before any claim
is used.

Why: `fhirUser` becomes the author of what the panel writes into the chart (the record of a
client notice). An id_token is only a claim until its signature verifies with the issuer's
published keys (`jwks_uri` from discovery) and it was issued by that issuer, for this client,
recently. `alg=none` and the HMAC algorithms are refused outright: with HS* the "key" would be
whatever the verifier is tricked into using (a public key, the client id), not the issuer's.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from consent_gap.smart.discovery import DiscoveryError, fetch_jwks

#: Asymmetric signatures only (never `none`, never HS*).
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: Clock skew allowed between the EHR and this app, in seconds.
LEEWAY = 60.0
#: How old an id_token may be when it reaches the app: it comes straight from the token
#: endpoint, moments after it was issued, so an old one is a replay.
MAX_AGE = 600.0


class IdTokenRejected(ValueError):
    """The id_token fails a check of OpenID Connect Core 3.1.3.7: the launch must not go on."""


def header_of(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, before anything is trusted; IdTokenRejected if garbled."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise IdTokenRejected("the id_token is not a signed JWT")
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, TypeError) as exc:
        raise IdTokenRejected("the id_token's header is not JSON") from exc
    if not isinstance(header, dict):
        raise IdTokenRejected("the id_token's header is not a JSON object")
    return header


def verify_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    now: float,
    leeway: float = LEEWAY,
    max_age: float = MAX_AGE,
) -> dict[str, Any]:
    """The claims of `token` when its signature verifies with `keys` and its claims are this
    issuer's, for this client, current; IdTokenRejected with the failed check otherwise. Pure."""
    alg = header_of(token).get("alg")
    if alg not in ALGORITHMS:
        raise IdTokenRejected(f"the id_token's algorithm {str(alg)[:12]!r} is not accepted")
    try:
        claims = jwt.decode(token, keys, algorithms=list(ALGORITHMS)).claims
    except InvalidKeyIdError as exc:
        raise IdTokenRejected("the id_token is signed with a key the EHR does not publish") from exc
    except BadSignatureError as exc:
        raise IdTokenRejected("the id_token's signature does not verify") from exc
    except (JoseError, ValueError) as exc:
        raise IdTokenRejected("the id_token cannot be verified") from exc
    check_claims(claims, issuer=issuer, client_id=client_id, now=now, leeway=leeway,
                 max_age=max_age)
    return dict(claims)


def check_claims(claims: Mapping[str, Any], *, issuer: str, client_id: str, now: float,
                 leeway: float = LEEWAY, max_age: float = MAX_AGE) -> None:
    """Steps 2-3 and 9-10 of 3.1.3.7 (issuer, audience and azp, expiry, issued-at)."""
    if claims.get("iss") != issuer:
        raise IdTokenRejected("the id_token was not issued by this EHR")
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise IdTokenRejected("the id_token was not issued for consent-gap")
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise IdTokenRejected("the id_token was issued to another party (azp)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise IdTokenRejected("the id_token names no subject")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not _number(exp) or now > exp + leeway:
        raise IdTokenRejected("the id_token has expired")
    if not _number(iat) or iat > now + leeway or iat < now - max_age - leeway:
        raise IdTokenRejected("the id_token's issue time is not plausible")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def verified_claims(
    session: requests.Session,
    token: str,
    *,
    jwks_uri: str | None,
    issuer: str,
    client_id: str,
    timeout: float | tuple[float, float] = (5.0, 10.0),
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Fetch the issuer's keys (cached; fetched afresh once for a `kid` not yet seen, which is
    how a key rotation shows) and verify `token` with them."""
    if not jwks_uri:
        raise IdTokenRejected("the EHR publishes no jwks_uri to verify its id_token with")
    kid = header_of(token).get("kid")
    try:
        keys = _key_set(fetch_jwks(jwks_uri, session, timeout=timeout))
        if kid and not any(key.kid == kid for key in keys.keys):
            keys = _key_set(fetch_jwks(jwks_uri, session, timeout=timeout, refresh=True))
    except DiscoveryError as exc:
        raise IdTokenRejected(f"the EHR's signing keys are unusable: {exc}") from exc
    return verify_id_token(token, keys, issuer=issuer, client_id=client_id, now=clock())


def _key_set(jwks: Mapping[str, Any]) -> KeySet:
    if not jwks.get("keys"):
        return KeySet([])
    try:
        return KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise DiscoveryError("the EHR's JWKS holds a key that cannot be read") from exc
