"""Invariants the clarified contract (issue 12) must keep, checked with hypothesis:

- the order in which purposes are listed never changes the decision, accountability,
  documentation or the client notice (1.3: every winning row counts; only the basis and the
  order of the reasons follow the listed order);
- an absolute URL on another server never resolves to a resource of the data set (1.1
  References), wherever it appears: disclosed data, the recipient, a Consent's actor.
"""

from __future__ import annotations

from consent_gap.evaluate import evaluate
from consent_gap.mappings import load_rules
from consent_gap.normalize import normalize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fhir import (
    PATIENT,
    RECIPIENT,
    actor,
    bundle,
    consent,
    disclosure,
    document,
    organization,
    patient,
    practitioner,
    provision,
    related_person,
    restriction,
)

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

PURPOSES = ["TREAT", "COC", "ETREAT", "THREAT", "PUBHLTH", "HPAYMT", "HOPERAT", "TRAIN",
            "HLEGAL", "GOV", "PATRQT", "FAMRQT", "HRESCH", "CLMATTCH", "MLTRAINING"]
RECIPIENTS = [RECIPIENT, "Practitioner/pr-src", PATIENT, "RelatedPerson/mom",
              "RelatedPerson/friend", "Device/dev-1"]


@st.composite
def charts(draw) -> tuple[list[dict], list[str], str | None, str]:
    purposes = draw(st.lists(st.sampled_from(PURPOSES), min_size=2, max_size=4, unique=True))
    recipient = draw(st.sampled_from(RECIPIENTS))
    birth = draw(st.sampled_from(["1980-04-01", "2012-02-01", None]))
    labels = draw(st.sampled_from([("MH",), ("PSYTHPN",), ("42CFRPart2",), ("ADOL",)]))
    extra: list[dict] = []
    if draw(st.booleans()):
        extra.append(consent(prov=provision(purposes=draw(st.lists(
            st.sampled_from(PURPOSES), min_size=1, max_size=2, unique=True)))))
    if draw(st.booleans()):
        extra.append(restriction())
    resources = [patient(birth_date=birth), practitioner(), organization(),
                 related_person("RelatedPerson/mom", "MTH"),
                 related_person("RelatedPerson/friend", "FRND"),
                 document(labels=labels), *extra]
    jurisdiction = draw(st.sampled_from([None, "US-CA", "US-TX", "US-NE"]))
    return resources, purposes, jurisdiction, recipient


@SETTINGS
@given(charts(), st.randoms(use_true_random=False))
def test_purpose_order_never_changes_accountability_or_documentation(chart, rnd):
    resources, purposes, jurisdiction, recipient = chart
    shuffled = list(purposes)
    rnd.shuffle(shuffled)
    got = []
    for order in (purposes, shuffled, list(reversed(purposes))):
        ae = disclosure(purposes=order, recipient=recipient)
        f = evaluate(bundle(resources, ae), jurisdiction).to_json()["findings"][0]
        got.append((f["decision"], f["accountable"], f["documentation"], f["client_notice"],
                    sorted(f["reasons"])))
    assert got[0] == got[1] == got[2], (purposes, shuffled, got)


HOSTS = st.from_regex(r"[a-z]{1,12}\.(example|test|org)", fullmatch=True)


@st.composite
def foreign_bases(draw) -> str:
    scheme = draw(st.sampled_from(["http", "https"]))
    path = draw(st.sampled_from(["/fhir", "/r4", "", "/api/fhir/R4"]))
    return f"{scheme}://{draw(HOSTS)}{path}"


OWN = "https://ehr.own.local/fhir"


@SETTINGS
@given(foreign_bases(), st.sampled_from(["Organization/org-rcpt", "DocumentReference/d1",
                                         "Patient/p1", "Practitioner/pr-src"]),
       st.booleans())
def test_a_foreign_url_never_resolves(base, target, read_with_base):
    if base.rstrip("/") == OWN:
        return
    url = f"{base}/{target}"
    resources = [patient(), practitioner(), organization(), document(),
                 consent(prov=provision(recipients=(), actors=(actor(url),))),
                 disclosure(recipient=url, data=(url,))]
    data = bundle(resources)
    for entry in data["entry"]:  # the data set's own fullUrls, on its own server
        r = entry["resource"]
        entry["fullUrl"] = f"{OWN}/{r['resourceType']}/{r['id']}"
    dataset = normalize(data, load_rules(), base=OWN if read_with_base else None)
    keys = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in data["entry"]}
    (d,) = dataset.disclosures
    assert d.recipient not in keys
    assert d.recipient_type is None
    assert all(not e.resolved for e in d.entities)
    (c,) = [c for chart in dataset.charts.values() for c in chart.consents]
    assert c.provision is not None
    assert all(a.reference not in keys for a in c.provision.actors)
    f = evaluate(data, base=OWN if read_with_base else None).to_json()["findings"][0]
    assert f["decision"] not in ("authorized", "permitted")
