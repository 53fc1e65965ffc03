"""SMART launch security, HTTP mocked: the allowlist before any request, PKCE S256 and a
single-use state bound to the session, the pages for denied consent and EHR errors, cookie
flags, token refresh before expiry."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from consent_gap.smart import discovery
from consent_gap.smart.ehr_launch import s256_challenge
from consent_gap.web import create_app
from consent_gap.web.config import PANEL_SCOPES, WebConfig
from idtokens import claims_for, hmac_signed, signed, stranger_key, unsigned
from webfakes import AUTHORIZE, CLIENT_ID, ISS, TOKEN, FakeEhr, example_resources

APPS: list = []


@pytest.fixture(autouse=True)
def _fresh_discovery_cache():
    discovery.clear_cache()
    yield
    discovery.clear_cache()
    # Prefetches started at /callback run on: let them end inside this test's HTTP mock.
    while APPS:
        APPS.pop().extensions["consent_gap.prefetch"].wait_idle()


@pytest.fixture
def mocked():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def make_app(**overrides):
    values = {"allowed_issuers": (ISS,), "secret_key": "test-secret",
              "public_url": "https://app.test", **overrides}
    app = create_app(config=WebConfig(**values))
    APPS.append(app)
    return app


def start(client, launch="launch-123", iss=ISS):
    query = f"/launch?iss={iss}" + (f"&launch={launch}" if launch else "")
    response = client.get(query)
    assert response.status_code == 302, response.data
    location = response.headers["Location"]
    return response, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@pytest.mark.parametrize("iss", [
    "https://evil.test/fhir",
    "https://ehr.test/fhir.evil.test",
    "https://ehr.test.evil.test/fhir",
    "https://ehr.test/fhir/other",
    "http://ehr.test/fhir",
    "https://ehr.test/fhir?x=1",
    "https://user:pw@ehr.test/fhir",
    "not a url",
])
def test_issuer_off_the_allowlist_is_refused_with_no_outbound_request(iss):
    with responses.RequestsMock() as mocked:  # nothing registered: any request would fail
        response = make_app().test_client().get("/launch", query_string={"iss": iss,
                                                                         "launch": "x"})
        assert response.status_code == 403
        assert b"This EHR is not allowed" in response.data
        assert len(mocked.calls) == 0


def test_launch_without_iss_is_refused_with_no_outbound_request():
    with responses.RequestsMock() as mocked:
        response = make_app().test_client().get("/launch?launch=x")
        assert response.status_code == 400 and len(mocked.calls) == 0


def test_ehr_launch_redirects_with_pkce_s256_state_aud_and_v2_scopes(mocked):
    FakeEhr(mocked, [], "p1")
    client = make_app().test_client()
    response, params = start(client)
    assert response.headers["Location"].startswith(AUTHORIZE + "?")
    assert params["response_type"] == "code"
    assert params["client_id"] == "consent-gap"
    assert params["redirect_uri"] == "https://app.test/callback"
    assert params["aud"] == ISS
    assert params["launch"] == "launch-123"
    assert params["scope"] == PANEL_SCOPES
    assert "patient/Consent.rs" in params["scope"].split()
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43
    assert len(params["state"]) >= 43
    # two launches never share a state or a challenge
    _, again = start(client)
    assert again["state"] != params["state"]
    assert again["code_challenge"] != params["code_challenge"]
    # nothing secret in the cookie: only an opaque id
    cookie = response.headers["Set-Cookie"]
    assert params["state"] not in cookie and "verifier" not in cookie


def test_standalone_launch_asks_for_a_patient(mocked):
    FakeEhr(mocked, [], "p1")
    _, params = start(make_app().test_client(), launch=None)
    scopes = params["scope"].split()
    assert "launch/patient" in scopes and "launch" not in scopes and "launch" not in params


def test_session_cookie_flags_secure_httponly_samesite_none():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        FakeEhr(mocked, [], "p1")
        response, _ = start(make_app().test_client())
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("cg_session=")
    for flag in ("Secure", "HttpOnly", "SameSite=None", "Partitioned", "Path=/"):
        assert flag in cookie


def test_dev_override_drops_secure_for_plain_http_on_localhost():
    discovery.clear_cache()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        FakeEhr(mocked, [], "p1")
        response, _ = start(make_app(dev_insecure_cookies=True).test_client())
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie and "Partitioned" not in cookie


def test_discovery_without_s256_refuses_to_start(mocked):
    mocked.get(f"{ISS}/.well-known/smart-configuration", json={
        "authorization_endpoint": AUTHORIZE, "token_endpoint": TOKEN,
        "code_challenge_methods_supported": ["plain"],
    })
    response = make_app().test_client().get(f"/launch?iss={ISS}&launch=x")
    assert response.status_code == 502
    assert b"PKCE" in response.data


def test_callback_with_the_right_state_exchanges_the_code_with_the_verifier(mocked):
    ehr = FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt")
    client = make_app().test_client()
    first, params = start(client)
    response = client.get(f"/callback?code=c-1&state={params['state']}")
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/panel/")
    form = ehr.token_forms[0]
    assert form["grant_type"] == "authorization_code" and form["code"] == "c-1"
    assert form["redirect_uri"] == "https://app.test/callback"
    assert s256_challenge(form["code_verifier"]) == params["code_challenge"]
    # the session id (and the CSRF token) change at sign-in (no fixation)
    assert response.headers["Set-Cookie"].split(";")[0] != first.headers["Set-Cookie"].split(";")[0]


def test_wrong_state_is_refused_and_no_code_is_exchanged(mocked):
    ehr = FakeEhr(mocked, [], "p1")
    client = make_app().test_client()
    start(client)
    for query in ("state=forged-state-value&code=c", "code=c", "state=&code=c"):
        response = client.get(f"/callback?{query}")
        assert response.status_code == 400
        assert b"not valid" in response.data
    assert ehr.token_forms == []


def test_reused_state_is_refused(mocked):
    ehr = FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt")
    client = make_app().test_client()
    _, params = start(client)
    assert client.get(f"/callback?code=c-1&state={params['state']}").status_code == 303
    again = client.get(f"/callback?code=c-1&state={params['state']}")
    assert again.status_code == 400
    assert len(ehr.token_forms) == 1


def test_state_from_another_browser_is_refused(mocked):
    ehr = FakeEhr(mocked, [], "p1")
    app = make_app()
    _, params = start(app.test_client())
    other = app.test_client()
    assert other.get(f"/callback?code=c&state={params['state']}").status_code == 400
    assert ehr.token_forms == []


def test_expired_state_is_refused(mocked, monkeypatch):
    ehr = FakeEhr(mocked, [], "p1")
    client = make_app().test_client()
    _, params = start(client)
    later = time.time() + 3600
    monkeypatch.setattr("consent_gap.web.context.time.time", lambda: later)
    assert client.get(f"/callback?code=c&state={params['state']}").status_code == 400
    assert ehr.token_forms == []


def test_denied_consent_gets_its_own_page(mocked):
    FakeEhr(mocked, [], "p1")
    client = make_app().test_client()
    _, params = start(client)
    response = client.get(f"/callback?error=access_denied&state={params['state']}")
    assert response.status_code == 403
    assert b"Access was not granted" in response.data


def test_ehr_error_gets_its_own_page_and_escapes_the_description(mocked):
    FakeEhr(mocked, [], "p1")
    client = make_app().test_client()
    _, params = start(client)
    response = client.get("/callback", query_string={
        "error": "server_error", "error_description": "<script>x()</script>",
        "state": params["state"]})
    assert response.status_code == 502
    assert b"The EHR reported an error" in response.data
    assert b"<script>x()" not in response.data and b"&lt;script&gt;x()" in response.data


def test_token_refused_by_the_ehr_shows_sign_in_failed(mocked):
    mocked.get(f"{ISS}/.well-known/smart-configuration", json={
        "authorization_endpoint": AUTHORIZE, "token_endpoint": TOKEN,
        "code_challenge_methods_supported": ["S256"]})
    mocked.post(TOKEN, status=400, json={"error": "invalid_grant"})
    client = make_app().test_client()
    _, params = start(client)
    response = client.get(f"/callback?code=bad&state={params['state']}")
    assert response.status_code == 502 and b"Sign-in failed" in response.data


def test_tokens_are_refreshed_before_expiry(mocked):
    ehr = FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt",
                  expires_in=30)
    client = make_app().test_client()
    _, params = start(client)
    client.get(f"/callback?code=c-1&state={params['state']}")
    response = client.get("/api/findings")
    assert response.status_code == 200
    assert [f["grant_type"] for f in ehr.token_forms] == ["authorization_code", "refresh_token"]
    assert ehr.token_forms[1]["refresh_token"] == "rt-1"
    assert set(ehr.fhir_tokens) == {"Bearer at-2"}  # every FHIR call used the fresh token


def test_expired_session_without_refresh_token_asks_to_launch_again(mocked):
    FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt",
            expires_in=30, refresh_token=None)
    client = make_app().test_client()
    _, params = start(client)
    location = client.get(f"/callback?code=c-1&state={params['state']}").headers["Location"]
    page = client.get(location)
    assert page.status_code == 401 and b"Your session has ended" in page.data
    api = client.get("/api/findings")
    assert api.status_code == 401


def test_logs_carry_no_tokens_codes_or_names(mocked, caplog):
    import logging

    ehr = FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt",
                  expires_in=30)
    client = make_app(privacy_officer="Practitioner/po-1").test_client()
    with caplog.at_level(logging.DEBUG):
        _, params = start(client)
        panel = client.get(f"/callback?code=secret-code-42&state={params['state']}")
        client.get(panel.headers["Location"])
        client.get("/api/findings")
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert ehr.tokens_issued >= 2  # the code exchange and refreshes happened
    tokens = [f"at-{n}" for n in range(1, ehr.tokens_issued + 1)]
    for secret in ("secret-code-42", params["state"], "rt-1", "Nandakumar", "Priya", *tokens):
        assert secret not in text, secret
    assert "launch completed" in text  # the logs do say what happened


def test_sign_in_replaces_the_csrf_token(mocked):
    FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt")
    client = make_app(privacy_officer="Practitioner/po-1").test_client()
    _, params = start(client)
    with client.session_transaction() as sess:
        sess["csrf"] = "planted-before-sign-in"
    panel = client.get(f"/callback?code=c&state={params['state']}").headers["Location"]
    html = client.get(panel).get_data(as_text=True)
    assert "planted-before-sign-in" not in html
    assert 'name="csrf_token" value="' in html


# -- the id_token (OpenID Connect Core 3.1.3.7) ---------------------------------------------

def _bad_id_tokens() -> dict:
    now = int(time.time())
    return {
        "forged": lambda: signed(claims_for(ISS, CLIENT_ID), key=stranger_key()),
        "alg-none": lambda: unsigned(claims_for(ISS, CLIENT_ID)),
        "hs256": lambda: hmac_signed(claims_for(ISS, CLIENT_ID)),
        "expired": lambda: signed(claims_for(ISS, CLIENT_ID, iat=now - 400, exp=now - 100)),
        "wrong-issuer": lambda: signed(claims_for("https://evil.test/fhir", CLIENT_ID)),
        "wrong-audience": lambda: signed(claims_for(ISS, "another-app")),
    }


@pytest.mark.parametrize("kind", list(_bad_id_tokens()))
def test_a_bad_id_token_refuses_the_launch_and_keeps_nothing(mocked, kind):
    ehr = FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt",
                  id_token=_bad_id_tokens()[kind]())
    client = make_app().test_client()
    _, params = start(client)
    response = client.get(f"/callback?code=c-1&state={params['state']}")
    assert response.status_code == 403
    assert b"Sign-in could not be verified" in response.data
    assert ehr.fhir_calls() == []  # no chart read on a refused sign-in
    assert client.get("/api/findings").status_code == 401  # and no launch kept


def test_the_verified_id_tokens_fhir_user_signs_the_client_notice(mocked):
    ehr = FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt")
    client = make_app(privacy_officer="Practitioner/po-1").test_client()
    _, params = start(client)
    panel = client.get(f"/callback?code=c-1&state={params['state']}").headers["Location"]
    html = client.get(panel).get_data(as_text=True)
    disclosure = re.search(r'data-disclosure="([^"]+)"', html).group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post(f"{panel}/client-notice",
                data={"csrf_token": token, "disclosure": disclosure, "outcome": "sent"})
    (bundle,) = ehr.transactions
    notice = next(e["resource"] for e in bundle["entry"]
                  if e["resource"]["resourceType"] == "Communication")
    assert notice["sender"] == {"reference": "Practitioner/dr-1"}


def test_aud_is_the_iss_exactly_as_the_ehr_launched(mocked):
    FakeEhr(mocked, [], "p1")
    launched = "https://EHR.test:443/fhir/"
    _, params = start(make_app().test_client(), iss=launched)
    assert params["aud"] == launched


def test_unauthenticated_launches_keep_one_short_lived_row_per_browser_and_a_bounded_store(
        mocked):
    from consent_gap.web.sessions import PENDING_TTL, MemoryStore

    FakeEhr(mocked, example_resources("02-authorization-expired.json"), "p-pnholt")
    store = MemoryStore(max_pending=25)
    app = create_app(config=WebConfig(allowed_issuers=(ISS,), secret_key="test-secret",
                                      public_url="https://app.test"), store=store)
    APPS.append(app)
    browser = app.test_client()
    for _ in range(40):  # one browser, launched again and again: one row, not forty
        start(browser)
    assert len(store) == 1
    [(_, expires_at)] = store._rows.values()
    assert expires_at <= time.time() + PENDING_TTL + 1  # not the hour of a signed-in session
    for _ in range(60):  # sixty browsers that never come back
        start(app.test_client())
    assert len(store) == 25  # the bound: the oldest pending rows went first
    _, params = start(browser)  # a browser whose row was evicted starts afresh
    assert params["state"]
