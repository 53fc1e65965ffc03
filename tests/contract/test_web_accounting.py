"""The panel's accounting page against a fake EHR (HTTP mocked): the rows are the accounting
`consent-gap accounting` gives for the same resources, names come from the resources, the
PDF downloads as a PDF, a date that cannot be read is refused, an ended session says so."""

from __future__ import annotations

import pytest
from consent_gap.accounting import account, parse_as_of
from consent_gap.evaluate import evaluate
from consent_gap.mappings import load_rules
from test_web_panel import APPS, _fresh_discovery_cache, launch, mocked  # noqa: F401

pytestmark = pytest.mark.usefixtures("_fresh_discovery_cache")


def _accounting_url(panel_url: str) -> str:
    return panel_url.replace("/panel/", "/accounting/")


def test_the_page_lists_the_accounting_of_the_same_resources(mocked):  # noqa: F811
    client, _, panel_url, resources = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike",
                                             "US-CA")
    panel = client.get(panel_url).get_data(as_text=True)
    assert f'href="{_accounting_url(panel_url)}"' in panel  # linked from the panel
    page = client.get(_accounting_url(panel_url) + "?as_of=2026-12-02")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    rules = load_rules()
    expected = account(resources, evaluate(resources, "US-CA", rules=rules), rules,
                       "Patient/p-dhpike", parse_as_of("2026-12-02"))
    for entry in expected.entries:
        assert f'data-disclosure="{entry.disclosure}"' in html
    assert "Alden Valley Police Department" in html and "Gareth Lindqvist-Moore" in html
    assert "2020-12-02 to 2026-12-02" in html and "accounting.css" in html
    assert "<style" not in html  # the page's CSS is a file (CSP style-src 'self')


def test_summarize_and_the_pdf(mocked):  # noqa: F811
    client, _, panel_url, _ = launch(mocked, "14-one-consent-over-time-deny-class.json",
                                     "p-tquill")
    url = _accounting_url(panel_url)
    html = client.get(url + "?as_of=2026-12-02&summarize=1").get_data(as_text=True)
    assert html.count("<tr class=") == 1 and "2 disclosures" in html
    pdf = client.get(url + "/pdf?as_of=2026-12-02")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data[:5] == b"%PDF-"
    assert 'filename="accounting-of-disclosures-2026-12-02.pdf"' in \
        pdf.headers["Content-Disposition"]


def test_a_date_that_cannot_be_read_is_refused(mocked):  # noqa: F811
    client, _, panel_url, _ = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike")
    response = client.get(_accounting_url(panel_url) + "?as_of=next-week")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.get_data(as_text=True)


def test_an_unknown_launch_is_the_ended_session_page(mocked):  # noqa: F811
    client, _, _, _ = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike")
    response = client.get("/accounting/not-a-launch")
    assert response.status_code == 401


def test_design_s_accounting_endpoint_opens_the_latest_launch(mocked):  # noqa: F811
    client, _, panel_url, _ = launch(mocked, "06-duty-to-warn-ca.json", "p-dhpike")
    response = client.get("/accounting?as_of=2026-12-02")
    assert response.status_code == 302
    assert response.headers["Location"] == _accounting_url(panel_url) + "?as_of=2026-12-02"
