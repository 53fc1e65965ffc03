"""Paging: a search larger than a page comes back in pages whose `next` links HAPI keeps (the
database-backed paging provider), with the sandbox's page sizes (default 20, `_count` up to 500)."""

from __future__ import annotations

import pytest

ID_SYSTEM = "https://consent-gap.dev/fhir/it-paging"
TOTAL = 45


@pytest.fixture(scope="module")
def many(fhir, run_id) -> set[str]:
    """TOTAL Communications sharing one identifier value, written in one transaction."""
    value = f"{run_id}-page"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Communication", "status": "completed",
                      "identifier": [{"system": ID_SYSTEM, "value": value},
                                     {"system": f"{ID_SYSTEM}/n", "value": f"{value}-{n}"}]},
         "request": {"method": "POST", "url": "Communication"}}
        for n in range(TOTAL)
    ]}
    r = fhir.post("", bundle)
    assert r.status_code == 200, r.text[:500]
    return {e["response"]["location"].split("/_history")[0] for e in r.json()["entry"]}


def _next(bundle: dict) -> str | None:
    return next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"),
                None)


def test_following_next_links_returns_every_match_once(fhir, run_id, many):
    bundle = fhir.search("Communication", {"identifier": f"{ID_SYSTEM}|{run_id}-page",
                                           "_count": 10})
    # HAPI counts in the background: the first page may come before the total is known.
    assert bundle.get("total", TOTAL) == TOTAL
    seen: list[str] = []
    pages = 0
    while True:
        pages += 1
        page = fhir.ids(fhir.entries(bundle))
        assert len(page) <= 10
        seen.extend(sorted(page))
        url = _next(bundle)
        if url is None or pages > 10:
            break
        assert url.startswith(fhir.base), url  # links point back at the server's own base
        r = fhir.get(url)
        assert r.status_code == 200, r.text[:500]
        bundle = r.json()
    assert pages == 5
    assert len(seen) == len(set(seen)) == TOTAL
    assert set(seen) == many


def test_default_page_size_is_twenty(fhir, run_id, many):
    bundle = fhir.search("Communication", {"identifier": f"{ID_SYSTEM}|{run_id}-page"})
    assert len(bundle["entry"]) == 20
    assert _next(bundle) is not None


def test_count_is_capped_at_five_hundred(fhir, run_id, many):
    bundle = fhir.search("Communication", {"identifier": f"{ID_SYSTEM}|{run_id}-page",
                                           "_count": 1000})
    assert len(bundle["entry"]) == TOTAL  # fewer than the cap: one page
    assert _next(bundle) is None
    previous = next(link for link in bundle["link"] if link["relation"] == "self")
    assert previous["url"]
