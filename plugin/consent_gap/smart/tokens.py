"""Talking to an OAuth token endpoint: one POST, a validated answer, readable errors.

Shared by Backend Services (client_credentials) and the EHR launch (authorization_code,
refresh_token). Error messages carry the OAuth `error` code and `error_description` only; the
request (codes, verifiers, assertions) and the response's tokens never go into a message or log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from consent_gap.fhir.errors import FhirError

log = logging.getLogger("consent_gap.smart")

#: Used when a token response omits expires_in; SMART backend tokens SHOULD NOT exceed 300 s.
DEFAULT_EXPIRES_IN = 300


class TokenError(FhirError):
    """The token endpoint refused or failed. `error` is the OAuth error code when given."""

    def __init__(self, message: str, *, error: str | None = None, status: int | None = None):
        super().__init__(message)
        self.error = error
        self.status = status


def _oauth_error(resp: requests.Response) -> TokenError:
    error = description = None
    try:
        body = resp.json()
        if isinstance(body, Mapping):
            error = body.get("error")
            description = body.get("error_description")
    except ValueError:
        pass
    detail = f": {error}" if error else ""
    if description:
        detail += f" ({' '.join(str(description).split())[:200]})"
    return TokenError(f"token endpoint answered HTTP {resp.status_code}{detail}",
                      error=error if isinstance(error, str) else None, status=resp.status_code)


def post_token_request(
    session: requests.Session,
    token_url: str,
    form: Mapping[str, str] | Callable[[], Mapping[str, str]],
    *,
    auth: tuple[str, str] | None = None,
    timeout: float | tuple[float, float] = (5.0, 30.0),
    attempts: int = 3,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """POST a form to the token endpoint and return the validated JSON token response.

    `form` may be a callable, called per attempt, so each retry carries a fresh client
    assertion (a server rejects a replayed `jti`). Retried on connection errors, timeouts,
    429 and 5xx, with 1 s, 2 s waits; an OAuth error (400/401) is final."""
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        data = form() if callable(form) else form
        try:
            resp = session.post(token_url, data=dict(data), auth=auth, timeout=timeout,
                                headers={"Accept": "application/json"}, allow_redirects=False)
        except (requests.Timeout, requests.ConnectionError) as exc:
            last = TokenError(f"token endpoint unreachable ({type(exc).__name__})")
            log.warning("token request failed (%s), attempt %d", type(exc).__name__, attempt)
        else:
            log.debug("POST token endpoint -> %s", resp.status_code)
            if resp.status_code == 200:
                return _validated(resp)
            last = _oauth_error(resp)
            if resp.status_code != 429 and resp.status_code < 500:
                raise last
        if attempt < attempts:
            sleep(float(2 ** (attempt - 1)))
    raise last or TokenError("token request not attempted")


def _validated(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError as exc:
        raise TokenError("token response is not JSON") from exc
    if not isinstance(body, dict):
        raise TokenError("token response is not a JSON object")
    if not isinstance(body.get("access_token"), str) or not body["access_token"]:
        raise TokenError("token response has no access_token")
    if str(body.get("token_type", "")).lower() != "bearer":
        raise TokenError("token response is not a bearer token")
    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    if not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or expires_in <= 0:
        raise TokenError("token response has an invalid expires_in")
    return body
