"""The app in the chart: a Flask app factory, its blueprints, templates and static files.

``create_app(settings=None)`` builds the app from :mod:`consent_gap.settings` (the process
environment when ``settings`` is None). Blueprints: ``auth`` (SMART launch, callback, errors),
``panel`` (the HTML panel), ``api`` (JSON), ``actions`` (the write-back buttons), ``meta``
(health, JWKS, start page).
"""

from __future__ import annotations

from consent_gap.web.app import create_app

__all__ = ["create_app"]
