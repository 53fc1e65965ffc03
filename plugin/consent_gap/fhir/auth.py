"""Bearer-token authentication for requests, for tokens obtained elsewhere (an EHR launch).

The token may be a fixed string or a callable asked on every request, so the web app can hand
the client a function that returns its session's current (refreshed) access token.
"""

from __future__ import annotations

from collections.abc import Callable

import requests
from requests.auth import AuthBase


class BearerAuth(AuthBase):
    """Adds `Authorization: Bearer <token>`; the token never appears in repr or logs."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self._token() if callable(self._token) else self._token
        r.headers["Authorization"] = f"Bearer {token}"
        return r

    def __repr__(self) -> str:
        return "BearerAuth(<hidden>)"
