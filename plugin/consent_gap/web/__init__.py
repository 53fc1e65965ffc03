"""The app in the chart (a shell): a Flask app factory, its blueprints, templates and static
files.

``create_app(settings=None)`` builds the app from :mod:`consent_gap.settings` (the process
environment when ``settings`` is None). One blueprint per page family: ``auth`` (launch.py:
SMART launch, callback), ``panel`` (the HTML panel), ``actions`` (the panel's write-back
buttons), ``accounting`` (the accounting of disclosures page and its PDF), ``api`` (JSON),
``cds`` (the CDS Hooks card), ``meta`` (health, JWKS, start page).
Beside them: ``services`` (typed accessors for the app's configuration, HTTP session,
prefetcher and CDS verifier: no string-keyed look-ups in a view), ``pages`` (the page helpers
every blueprint shares: message and error pages, resolving a launch, one-time notices),
``context`` (the launch kept in the session: smart's token set, extended), ``view`` and
``timeline`` (what the panel shows, pure). Words come from :mod:`consent_gap.wording`; FHIR
is read through the fetch plan and written through :mod:`consent_gap.writeback`.
"""

from __future__ import annotations

from consent_gap.web.app import create_app

__all__ = ["create_app"]
