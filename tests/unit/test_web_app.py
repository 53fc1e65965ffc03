"""The app factory, its security headers, cookie flags, CSRF refusal and inert templates."""

from __future__ import annotations

from consent_gap.domain import ClientNotice, Decision, Documentation, Finding
from consent_gap.web import create_app
from consent_gap.web.config import PANEL_SCOPES, WebConfig, from_settings
from consent_gap.web.timeline import STYLES, layout
from consent_gap.web.view import (
    AuthorizationRow,
    Banner,
    ConsentsChecked,
    FindingView,
    PanelView,
    Reason,
    counts,
)
from flask import render_template

ISS = "https://ehr.test/fhir"


def make_app(**overrides):
    config = WebConfig(allowed_issuers=(ISS,), secret_key="test-secret", **overrides)
    return create_app(config=config)


def test_factory_reads_settings_fields():
    from consent_gap.settings import load_settings

    settings = load_settings({
        "CONSENT_GAP_ALLOWED_ISSUERS": "https://ehr.example/fhir https://other.example/r4/",
        "CONSENT_GAP_PUBLIC_URL": "https://app.example",
        "CONSENT_GAP_SECRET_KEY": "k",
        "CONSENT_GAP_SESSION_TTL": "120",
    })
    config = from_settings(settings)
    assert config.allowed_issuers == ("https://ehr.example/fhir", "https://other.example/r4")
    assert config.callback_url == "https://app.example/callback"
    assert config.ancestor_origins == ("https://ehr.example", "https://other.example")
    assert config.client_id == "consent-gap" and config.scopes == PANEL_SCOPES
    assert config.session_ttl == 120
    app = create_app(settings)
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_security_headers_on_every_page():
    client = make_app().test_client()
    for path in ("/", "/healthz", "/launch", "/panel/nope", "/api/findings"):
        response = client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self' https://ehr.test" in csp, path
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["Cache-Control"] == "no-store"
        assert "X-Frame-Options" not in response.headers  # would block the EHR's iframe


def test_explicit_frame_ancestors_replace_the_issuer_origins():
    client = make_app(frame_ancestors=("https://chart.example/ui",)).test_client()
    csp = client.get("/healthz").headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://chart.example;" in csp + ";"
    assert "ehr.test" not in csp


def test_api_without_a_session_is_401_json():
    response = make_app().test_client().get("/api/findings")
    assert response.status_code == 401
    assert response.get_json()["error"] == "no-session"


def test_panel_for_an_unknown_launch_says_the_session_ended():
    response = make_app().test_client().get("/panel/unknown")
    assert response.status_code == 401
    assert b"Your session has ended" in response.data


def test_jwks_serves_the_public_key_only(tmp_path):
    from consent_gap.smart import keys

    pem, jwks = tmp_path / "key.pem", tmp_path / "jwks.json"
    key = keys.ensure_signing_key(pem)
    keys.write_jwks(jwks, [key.public_jwk()])
    client = make_app(jwks_file=jwks).test_client()
    body = client.get("/.well-known/jwks.json").get_json()
    assert len(body["keys"]) == 1
    key = body["keys"][0]
    assert key["kty"] == "RSA" and "n" in key and "e" in key
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert make_app().test_client().get("/.well-known/jwks.json").get_json() == {"keys": []}


HOSTILE = '<script>alert("x")</script>'


def hostile_view() -> PanelView:
    finding = Finding(
        disclosure="AuditEvent/ae-1", patient="Patient/p1", occurred="2025-04-02T10:00:00Z",
        recipient="Organization/o1", purposes=("HLEGAL",), decision=Decision.REVIEW,
        basis=None, reasons=("legal-review-needed",), accountable=True,
        documentation=Documentation.MISSING, client_notice=ClientNotice.MISSING,
        explanation=f"Explanation {HOSTILE}",
        consents_checked=(("Consent/c1", "authorization-expired"),),
    )
    item = FindingView(
        index=1, anchor="finding-1", finding=finding, style=STYLES[Decision.REVIEW],
        occurred="2025-04-02 10:00:00 UTC", purposes="HLEGAL",
        reasons=(Reason("legal-review-needed", "needs legal review"),),
        decided_by=(Reason("exceptions/legal-no-instrument", "a legal request"),),
        consents=(ConsentsChecked("authorization-expired", "expired", ("Consent/c1",)),),
        consents_total=1, recipient=f"Clinic {HOSTILE}", basis="none",
        draft=None, alert=None, notes=(),
        can_draft=True, can_notice=True, can_alert=True,
    )
    return PanelView(
        lid="L1", patient="Patient/p1", banner=Banner(f"Name {HOSTILE}", "1990-01-01", "female"),
        counts=counts([finding]), timeline=layout([finding], []),
        authorizations=(AuthorizationRow("Consent/c1", "2025-01-01 to 2025-03-01", "active",
                                         f"Consent text {HOSTILE}"),),
        findings=(item,),
        problems=(), jurisdiction=None, ruleset="2026.3",
    )


def test_consent_and_finding_text_holding_script_renders_inert():
    app = make_app()
    with app.test_request_context("/panel/L1"):
        html = render_template("panel.html", view=hostile_view(), notices=[])
    assert "<script>alert" not in html
    assert html.count("&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") == 4
    # the only script element is the local panel.js
    assert html.count("<script") == 1 and 'src="/static/panel.js"' in html
    # the finding's action form carries the CSRF token once; every control has a label
    assert html.count('name="csrf_token"') == 1
    assert html.count('formaction="/panel/L1/') == 3
    assert 'for="reason-1"' in html and 'id="reason-1"' in html


def test_panel_marks_decisions_with_words_and_symbols_not_colour_alone():
    app = make_app()
    with app.test_request_context("/panel/L1"):
        html = render_template("panel.html", view=hostile_view(), notices=[])
    assert "Needs review" in html  # the decision in words
    assert STYLES[Decision.REVIEW].symbol in html  # and its symbol
    assert 'role="img"' in html and "<desc" in html  # the SVG is described


def test_a_shared_session_store_needs_a_secret_key(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="CONSENT_GAP_SECRET_KEY"):
        create_app(config=WebConfig(session_store=f"sqlite:{tmp_path / 's.db'}"))
    create_app(config=WebConfig(session_store=f"sqlite:{tmp_path / 's.db'}", secret_key="k"))


def test_request_logs_lose_their_query_strings():
    import logging

    from consent_gap.web.redact import QueryRedactingFilter

    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '%s - - "%s" %s',
                               ("127.0.0.1", "GET /callback?code=SECRET&state=S HTTP/1.1", 303),
                               None)
    assert QueryRedactingFilter().filter(record)
    line = record.getMessage()
    assert "SECRET" not in line and "state=S" not in line
    assert "GET /callback?\u2026 HTTP/1.1" in line


def test_start_page_offers_a_standalone_launch_per_allowed_issuer():
    html = make_app().test_client().get("/").get_data(as_text=True)
    assert f'href="/launch?iss={ISS}"' in html
    assert "<form" not in html  # a form's redirect to the EHR would break CSP form-action
