"""The scenario catalogue: the seed article's table and every state CONTRACT.md distinguishes.

Each scenario adds its resources to a `Chart` and, for each disclosure, the decision it expects as
a function of the jurisdiction. Scenarios never share a recipient on one chart (`Chart.org` hands
out fresh ones), so a Consent written for one scenario cannot decide another; the only Consent
without a recipient (`incomplete-no-recipient`) is limited to its own document for the same reason.

`seed` names the row of the seed article's "Mandatory Reporting by Scenario" table (or its
sections) that a scenario illustrates; `profiles` says which patients it fits (adult, minor,
young = 19-20 in Mississippi / 18 in Alabama: a minor there, an adult federally).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from . import fhirbuild as fb
from .chart import DAY, Chart, Expectation
from .expect import (
    NR,
    Expected,
    Juris,
    authorized,
    permitted,
    required,
    review,
    unauthorized,
)

ADULT = ("adult",)
MINOR = ("minor",)
YOUNG = ("young",)
ANYONE = ("adult", "minor", "young")

TREATMENT = "hipaa-164.506-treatment"
PAYMENT = "hipaa-164.506-payment"
OPERATIONS = "hipaa-164.506-operations"
EMERGENCY = "hipaa-164.506-emergency-treatment"
ACCESS = "hipaa-164.524-access"
COURT_ORDER = "hipaa-164.512(e)-court-order"
PSY = "psychotherapy-notes-need-specific-authorization"
PART2 = "part2-consent-required"
LEGAL_REVIEW = "legal-review-needed"
FAMILY = "family-involvement-review"


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[Chart], None]
    profiles: tuple[str, ...]
    seed: str
    weight: float
    disclosures: int  # how many decided disclosures it adds


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, *, profiles: tuple[str, ...] = ADULT, seed: str = "",
             weight: float = 1.0, disclosures: int = 1
             ) -> Callable[[Callable[[Chart], None]], Callable[[Chart], None]]:
    def register(build: Callable[[Chart], None]) -> Callable[[Chart], None]:
        SCENARIOS[name] = Scenario(name, build, profiles, seed, weight, disclosures)
        return build
    return register


def const(expected: Expected | None) -> Expectation:
    return lambda _j: expected


def threat(doc: str, notice: str) -> Expectation:
    """THREAT: required where the state's duty is mandatory, else permitted under 164.512(j)."""
    def expect(j: Juris) -> Expected:
        if j.duty == "mandatory":
            return required("duty-to-warn-or-protect", doc, notice)
        return permitted("hipaa-164.512(j)-serious-threat", accountable=True,
                         documentation=doc, client_notice=notice)
    return expect


def abuse(ch: Chart, t: dt.datetime, doc: str, notice: str) -> Expectation:
    """PUBHLTH: required; no client notice is due when the patient is a minor at the time."""
    return lambda j: required("abuse-report", doc, NR if j.minor(ch.birth, t) else notice)


def signed_before(ch: Chart, t: dt.datetime, low: int = 20, high: int = 120) -> dt.datetime:
    return t - ch.rng.randint(low, high) * DAY - dt.timedelta(hours=3)


# ---- seed table: threats, emergencies, abuse ------------------------------------------------

@scenario("duty-to-warn", profiles=ANYONE, seed="Threat to specific person: police, potential "
          "victim", weight=3, disclosures=2)
def duty_to_warn(ch: Chart) -> None:
    t = ch.slot()
    risk = ch.observation_entity(t, "Violence risk assessment",
                                 "Specific threat against a named person; judged serious")
    victim = ch.relative(None, "named target",
                         ch.rng.choice(["former business partner (named target of threat)",
                                        "neighbour named in a threat"]))
    police = ch.org("police")
    data = ch.data("progress", t)
    events = [ch.disclose("duty-to-warn", t, ["THREAT"], police, [risk, data], lambda _: None),
              ch.disclose("duty-to-warn", t + dt.timedelta(minutes=20), ["THREAT"], victim,
                          [data], lambda _: None)]
    doc, notice = ch.aftermath(events, t)
    for case in ch.cases[-2:]:
        case.expect = threat(doc, notice)


@scenario("duty-to-warn-psychotherapy-notes", profiles=ANYONE,
          seed="Threat to specific person (psychotherapy notes may go: 164.508(a)(2)(ii))")
def threat_psynotes(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("duty-to-warn-psychotherapy-notes", t, ["THREAT"], ch.org("police"),
                     [ch.data("psynote", t)], lambda _: None)
    ch.cases[-1].expect = threat(*ch.aftermath([ae], t))


@scenario("duty-to-warn-part2", profiles=ANYONE,
          seed="Threat to specific person with Part 2 data (no 2.x exception)")
def threat_part2(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("duty-to-warn-part2", t, ["THREAT"], ch.org("police"),
                     [ch.data("part2", t)], const(unauthorized(PART2)))
    ch.aftermath([ae], t)  # written or not, 1.4 does not apply to an unauthorized finding


@scenario("suicide-plan-crisis-team", profiles=ANYONE,
          seed="Suicide Plan (Imminent): crisis services", weight=2)
def suicide_crisis(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("suicide-plan-crisis-team", t, [ch.rng.choice(["ETREAT", "ERTREAT"])],
                     ch.org("crisis"), [ch.data("progress", t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = const(permitted(EMERGENCY, documentation=doc, client_notice=notice))


@scenario("suicide-plan-police", profiles=ANYONE, seed="Suicide Plan (Imminent): police")
def suicide_police(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("suicide-plan-police", t, ["THREAT"], ch.org("police"),
                     [ch.observation_entity(t, "Suicide risk assessment",
                                            "Plan, means and intent; imminent")],
                     lambda _: None)
    ch.cases[-1].expect = threat(*ch.aftermath([ae], t))


@scenario("suicidal-ideation-monitor", profiles=ANYONE, seed="Suicidal Ideation (No Plan): "
          "document & monitor (no disclosure)", disclosures=0)
def ideation(ch: Chart) -> None:
    t = ch.slot()
    ch.observation_entity(t, "Suicide risk assessment",
                          "Passive ideation, no plan or intent; safety plan reviewed")
    ch.resources[-1]["meta"].update(fb.scenario_tag("suicidal-ideation-monitor"))


@scenario("child-abuse-report", profiles=MINOR, seed="Child Abuse Disclosure: CPS", weight=2)
def child_abuse(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("child-abuse-report", t, ["PUBHLTH"], ch.org("cps"),
                     [ch.data("progress", t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = abuse(ch, t, doc, notice)


@scenario("child-abuse-report-adult-client", profiles=ADULT,
          seed="Child Abuse Disclosure by an adult client: CPS")
def child_abuse_adult(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("child-abuse-report-adult-client", t, ["PUBHLTH"], ch.org("cps"),
                     [ch.data("progress", t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = abuse(ch, t, doc, notice)


@scenario("elder-abuse-report", profiles=ADULT, seed="Elder or dependent adult abuse: APS")
def elder_abuse(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("elder-abuse-report", t, ["PUBHLTH"], ch.org("aps"),
                     [ch.data("progress", t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = abuse(ch, t, doc, notice)


@scenario("abuse-report-young-adult", profiles=YOUNG,
          seed="Abuse report about a client who is a minor only under state law")
def abuse_young(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("abuse-report-young-adult", t, ["PUBHLTH"], ch.org("aps"),
                     [ch.data("progress", t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = abuse(ch, t, doc, notice)


@scenario("abuse-report-psychotherapy-notes", profiles=ANYONE,
          seed="Abuse report that sent psychotherapy notes")
def abuse_psynotes(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("abuse-report-psychotherapy-notes", t, ["PUBHLTH"], ch.org("cps"),
                     [ch.data("psynote", t)], const(review(PSY)))
    ch.aftermath([ae], t)


# ---- seed table: courts, subpoenas, government -----------------------------------------------

def _legal(ch: Chart, name: str, instruments: list[tuple[str, int]], recipient_kind: str,
           data_kind: str, expect: Callable[[str, str], Expected]) -> None:
    t = ch.slot()
    entities = [ch.instrument(code, t + days * DAY, f"{code} received for this client")
                for code, days in instruments]
    ae = ch.disclose(name, t, ["HLEGAL"], ch.org(recipient_kind),
                     [*entities, ch.data(data_kind, t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = const(expect(doc, notice))


@scenario("court-order", profiles=ANYONE, seed="Court order (164.512(e)(1)(i))", weight=2)
def court_order(ch: Chart) -> None:
    _legal(ch, "court-order", [("court-order", -7)], "court", "summary",
           lambda d, n: required(COURT_ORDER, d, n))


@scenario("warrant", profiles=ANYONE, seed="Warrant served by police")
def warrant(ch: Chart) -> None:
    _legal(ch, "warrant", [("warrant", -1)], "police", "summary",
           lambda d, n: required(COURT_ORDER, d, n))


@scenario("subpoena-only", profiles=ANYONE, seed="Court Subpoena Without Order", weight=3)
def subpoena_only(ch: Chart) -> None:
    _legal(ch, "subpoena-only", [("subpoena", -14)], "law", "summary",
           lambda _d, _n: unauthorized("subpoena-without-court-order"))


@scenario("subpoena-with-assurance", profiles=ANYONE,
          seed="Subpoena with satisfactory assurance (164.512(e)(1)(ii))")
def subpoena_assured(ch: Chart) -> None:
    _legal(ch, "subpoena-with-assurance",
           [("subpoena", -21), ("satisfactory-assurance", -10)], "law", "summary",
           lambda _d, _n: review(LEGAL_REVIEW))


@scenario("assurance-only", profiles=ANYONE, seed="Satisfactory assurance without a subpoena")
def assurance_only(ch: Chart) -> None:
    _legal(ch, "assurance-only", [("satisfactory-assurance", -10)], "law", "summary",
           lambda _d, _n: review(LEGAL_REVIEW))


@scenario("administrative-request", profiles=ANYONE, seed="Administrative request")
def administrative(ch: Chart) -> None:
    _legal(ch, "administrative-request", [("administrative-request", -9)], "agency", "summary",
           lambda _d, _n: review(LEGAL_REVIEW))


@scenario("legal-no-instrument", profiles=ANYONE, seed="Legal request with nothing on file")
def legal_bare(ch: Chart) -> None:
    _legal(ch, "legal-no-instrument", [], "court", "summary",
           lambda _d, _n: review(LEGAL_REVIEW))


@scenario("court-order-dated-after", profiles=ANYONE,
          seed="Court order received after the records went out")
def court_order_late(ch: Chart) -> None:
    _legal(ch, "court-order-dated-after", [("court-order", 5)], "court", "summary",
           lambda _d, _n: review(LEGAL_REVIEW))


@scenario("court-order-part2", profiles=ANYONE, seed="Plain court order for Part 2 records")
def court_order_part2(ch: Chart) -> None:
    _legal(ch, "court-order-part2", [("court-order", -7)], "court", "part2",
           lambda _d, _n: review(PART2))


@scenario("part2-court-order", profiles=ANYONE, seed="42 CFR Part 2 subpart E court order")
def part2_court_order(ch: Chart) -> None:
    _legal(ch, "part2-court-order", [("part2-court-order", -7)], "court", "part2",
           lambda d, n: required(COURT_ORDER, d, n))


@scenario("public-safety-government", profiles=ANYONE,
          seed="Threats to public safety or national security (GOV)")
def government(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("public-safety-government", t, ["GOV"], ch.org("agency"),
                     [ch.data("summary", t)], const(review(LEGAL_REVIEW)))
    ch.aftermath([ae], t)


# ---- situational: treatment, consultation, billing, family ---------------------------------

@scenario("treatment-coordination", profiles=ANYONE, seed="Treatment coordination", weight=7)
def treatment(ch: Chart) -> None:
    t = ch.slot()
    to_org = ch.rng.random() < 0.4
    ch.disclose("treatment-coordination", t, [ch.rng.choice(["TREAT", "COC"])],
                ch.org("provider") if to_org else ch.clinician(), [ch.data("summary", t)],
                const(permitted(TREATMENT)))


@scenario("treatment-and-patient-request", profiles=ANYONE,
          seed="Treatment coordination the client also asked for")
def treatment_patrqt(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("treatment-and-patient-request", t, ["TREAT", "PATRQT"], ch.clinician(),
                [ch.data("progress", t)], const(permitted(TREATMENT)))


@scenario("treatment-to-family-member", profiles=ADULT,
          seed="Treatment purpose but the recipient is not a provider")
def treatment_family(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("treatment-to-family-member", t, ["TREAT"], ch.relative("SPS", "spouse"),
                [ch.data("summary", t)], const(review("recipient-not-a-provider")))


@scenario("failed-export", profiles=ANYONE, seed="Failed fax, then the retry")
def failed_export(ch: Chart) -> None:
    t = ch.slot()
    doctor = ch.clinician()
    data = ch.data("summary", t)
    ch.disclose("failed-export", t, ["COC"], doctor, [data], const(None),
                outcome=ch.rng.choice(["4", "8"]), outcome_desc="Fax transmission failed")
    ch.disclose("failed-export", t + dt.timedelta(minutes=25), ["COC"], doctor, [data],
                const(permitted(TREATMENT)))


@scenario("consultation-supervision", profiles=ANYONE, seed="Consultation and supervision")
def supervision(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("consultation-supervision", t, [ch.rng.choice(["HOPERAT", "TRAIN"])],
                ch.directory.supervisors[ch.state], [ch.data("progress", t)],
                const(permitted(OPERATIONS)))


@scenario("billing", profiles=ANYONE, seed="Insurance and billing", weight=7)
def billing(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("billing", t, [ch.rng.choice(["HPAYMT", "CLMATTCH", "COVAUTH"])],
                ch.org("payer"), [ch.data("claim", t)], const(permitted(PAYMENT)))


@scenario("billing-psychotherapy-notes", profiles=ANYONE,
          seed="Insurance and billing that sent psychotherapy notes")
def billing_psynotes(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("billing-psychotherapy-notes", t, ["CLMATTCH"], ch.org("payer"),
                [ch.data("psynote", t)], const(unauthorized(PSY)))


@scenario("treatment-psychotherapy-notes", profiles=ANYONE,
          seed="Treatment coordination that sent psychotherapy notes")
def treatment_psynotes(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("treatment-psychotherapy-notes", t, ["TREAT"], ch.clinician(),
                [ch.data("psynote", t)], const(unauthorized(PSY)))


@scenario("treatment-part2", profiles=ANYONE,
          seed="Treatment coordination that sent Part 2 records without consent")
def treatment_part2(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("treatment-part2", t, ["COC"], ch.org("provider"),
                [ch.data(ch.rng.choice(["part2", "part2-uslaw"]), t)],
                const(unauthorized(PART2)))


@scenario("emergency-part2", profiles=ANYONE, seed="Medical emergency with Part 2 records (2.51)")
def emergency_part2(ch: Chart) -> None:
    t = ch.slot()
    ae = ch.disclose("emergency-part2", t, ["ETREAT"], ch.org("crisis"),
                     [ch.data("part2", t)], lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = const(permitted(EMERGENCY, documentation=doc, client_notice=notice))


@scenario("client-access", profiles=ANYONE, seed="Client requests own records (164.524)",
          weight=3)
def client_access(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("client-access", t, ["PATRQT"], ch.patient, [ch.data("summary", t)],
                const(permitted(ACCESS)))


@scenario("client-access-psychotherapy-notes", profiles=ANYONE,
          seed="Client given psychotherapy notes (no right of access)")
def client_access_psynotes(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("client-access-psychotherapy-notes", t, ["PATRQT"], ch.patient,
                [ch.data("psynote", t)], const(review(PSY)))


@scenario("client-access-part2", profiles=ANYONE, seed="Client given own Part 2 records (2.23)")
def client_access_part2(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("client-access-part2", t, ["PATRQT"], ch.patient, [ch.data("part2", t)],
                const(permitted(ACCESS)))


@scenario("parent-access-minor", profiles=MINOR, seed="Parents of a minor (personal "
          "representative)", weight=2)
def parent_access(ch: Chart) -> None:
    t = ch.slot()
    parent = ch.relative(ch.rng.choice(["PRN", "MTH", "FTH"]), "parent")
    ch.disclose("parent-access-minor", t, [ch.rng.choice(["FAMRQT", "PWATRNY"])], parent,
                [ch.data("summary", t)], const(permitted(ACCESS)))


@scenario("parent-access-young-adult", profiles=YOUNG,
          seed="Parent of a client who is a minor only under state law")
def parent_access_young(ch: Chart) -> None:
    t = ch.slot()
    parent = ch.relative("MTH", "mother")
    ch.disclose("parent-access-young-adult", t, ["FAMRQT"], parent, [ch.data("summary", t)],
                lambda j: permitted(ACCESS) if j.minor(ch.birth, t) else review(FAMILY))


@scenario("guardian-access-adult", profiles=ADULT, seed="Guardian of an adult client")
def guardian_access(ch: Chart) -> None:
    t = ch.slot()
    code, shown = ch.rng.choice([("GUARD", "guardian"), ("HPOWATT", "healthcare power of "
                                                                    "attorney")])
    ch.disclose("guardian-access-adult", t, ["PWATRNY"], ch.relative(code, shown),
                [ch.data("summary", t)], const(permitted(ACCESS)))


@scenario("parent-request-adult-client", profiles=ADULT,
          seed="Couples and families: a parent of an adult client asks")
def parent_adult(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("parent-request-adult-client", t, ["FAMRQT"], ch.relative("MTH", "mother"),
                [ch.data("summary", t)], const(review(FAMILY)))


@scenario("family-involvement-spouse", profiles=ADULT,
          seed="Couples and families: involvement in care (164.510(b))", weight=2)
def family_spouse(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("family-involvement-spouse", t, [ch.rng.choice(["FAMRQT", "SUPNWK"])],
                ch.relative("SPS", "spouse"), [ch.data("summary", t)], const(review(FAMILY)))


@scenario("employer-without-authorization", profiles=ADULT,
          seed="Employer without authorization", weight=2)
def employer(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("employer-without-authorization", t, ["PATRQT"], ch.org("employer"),
                [ch.data("summary", t)], const(unauthorized()))


@scenario("no-purpose", profiles=ANYONE, seed="Disclosure logged without a purpose")
def no_purpose(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("no-purpose", t, [], ch.org("records"), [ch.data("summary", t)],
                const(review("purpose-missing")))


@scenario("purpose-in-other-system", profiles=ANYONE,
          seed="Purpose coded only in a local code system")
def other_system_purpose(ch: Chart) -> None:
    t = ch.slot()
    local = fb.concept("https://clinic.example/fhir/CodeSystem/release-reason",
                       "records-request", "Records request")
    ch.disclose("purpose-in-other-system", t, [], ch.org("records"), [ch.data("summary", t)],
                const(review("purpose-missing")), raw_purposes=[local])


@scenario("purpose-unmapped", profiles=ANYONE, seed="Research disclosure (no row)")
def unmapped(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("purpose-unmapped", t, ["HRESCH"], ch.org("records"), [ch.data("summary", t)],
                const(review("purpose-unmapped")))


@scenario("data-unresolved", profiles=ANYONE, seed="Records sent that are not in the chart")
def unresolved(ch: Chart) -> None:
    t = ch.slot()
    outside = fb.audit_entity({"identifier": {"system": "https://clinic.example/fhir/sid/fax-log",
                                              "value": f"FAX-{ch.index:06d}-{ch._serial}"}},
                              name="Faxed records (not in the chart)")
    ch.disclose("data-unresolved", t, ["TREAT"], ch.clinician(), [outside],
                const(review("data-unresolved", accountable=False)))


@scenario("no-data-entity", profiles=ANYONE, seed="Disclosure with no record listed")
def no_entity(ch: Chart) -> None:
    t = ch.slot()
    ch.disclose("no-data-entity", t, ["COC"], ch.org("provider"), [],
                const(review("data-unresolved", accountable=False)))


@scenario("external-record-labelled", profiles=ANYONE,
          seed="Records outside the chart, labelled on the log entry")
def external_labelled(ch: Chart) -> None:
    t = ch.slot()
    outside = fb.audit_entity({"identifier": {"system": "https://clinic.example/fhir/sid/fax-log",
                                              "value": f"FAX-{ch.index:06d}-{ch._serial}"}},
                              name="Faxed intake summary", labels=["MH"])
    ch.disclose("external-record-labelled", t, ["TREAT"], ch.org("provider"), [outside],
                const(permitted(TREATMENT)))


# ---- restrictions (164.522) ------------------------------------------------------------------

def _restriction(ch: Chart, name: str, t: dt.datetime, recipient: str, purposes: list[str] | None,
                 rule: str, status: str = "active") -> str:
    signed = signed_before(ch, t)
    prov = fb.provision(kind="deny", start=signed.replace(hour=0, minute=0, second=0),
                        actors=[fb.actor("IRCP", fb.ref(recipient))], purposes=purposes)
    return ch.consent(name, signed, prov, policy_rule=rule,
                      categories=[fb.concept(fb.LOINC, "59284-0", "Patient Consent")],
                      policy_uri="https://clinic.example/forms/restriction/v1", status=status,
                      signature="attachment")


@scenario("self-pay-restriction", profiles=ADULT, seed="Self-pay restriction (164.522(a)(1)(vi))")
def self_pay(ch: Chart) -> None:
    t = ch.slot()
    payer = ch.org("payer")
    _restriction(ch, "self-pay-restriction", t, payer, ["HPAYMT", "HOPERAT"], "hipaa-self-pay")
    ch.disclose("self-pay-restriction", t, ["HPAYMT"], payer, [ch.data("claim", t)],
                const(unauthorized("restricted-by-patient", "not-an-authorization")))


@scenario("self-pay-restriction-other-payer", profiles=ADULT,
          seed="Self-pay restriction on another plan")
def self_pay_other(ch: Chart) -> None:
    t = ch.slot()
    _restriction(ch, "self-pay-restriction-other-payer", t, ch.org("payer"),
                 ["HPAYMT", "HOPERAT"], "hipaa-self-pay")
    ch.disclose("self-pay-restriction-other-payer", t, ["HPAYMT"], ch.org("payer"),
                [ch.data("claim", t)], const(permitted(PAYMENT)))


@scenario("restriction-inactive", profiles=ADULT, seed="Withdrawn restriction")
def restriction_inactive(ch: Chart) -> None:
    t = ch.slot()
    payer = ch.org("payer")
    _restriction(ch, "restriction-inactive", t, payer, ["HPAYMT"], "hipaa-self-pay",
                 status="inactive")
    ch.disclose("restriction-inactive", t, ["HPAYMT"], payer, [ch.data("claim", t)],
                const(permitted(PAYMENT)))


@scenario("restriction-treatment", profiles=ADULT,
          seed="Client asked that one provider get nothing (164.522(a))")
def restriction_treatment(ch: Chart) -> None:
    t = ch.slot()
    provider = ch.org("provider")
    _restriction(ch, "restriction-treatment", t, provider, None, "hipaa-restrictions")
    ch.disclose("restriction-treatment", t, ["COC"], provider, [ch.data("summary", t)],
                const(unauthorized("restricted-by-patient", "not-an-authorization")))


@scenario("restriction-emergency", profiles=ADULT,
          seed="Restriction does not stop emergency treatment")
def restriction_emergency(ch: Chart) -> None:
    t = ch.slot()
    crisis = ch.org("crisis")
    _restriction(ch, "restriction-emergency", t, crisis, None, "hipaa-restrictions")
    ae = ch.disclose("restriction-emergency", t, ["ETREAT"], crisis, [ch.data("progress", t)],
                     lambda _: None)
    doc, notice = ch.aftermath([ae], t)
    ch.cases[-1].expect = const(permitted(EMERGENCY, documentation=doc, client_notice=notice))


# ---- client authorizes disclosure (164.508) --------------------------------------------------

def _authorized_case(ch: Chart, name: str, recipient_kind: str = "law", data: str = "summary",
                     **consent: object) -> None:
    t = ch.slot()
    recipient = ch.org(recipient_kind)
    cid = ch.authorization(name, signed_before(ch, t), recipient, **consent)  # type: ignore
    ch.disclose(name, t, ["PATRQT"], recipient, [ch.data(data, t)], const(authorized(cid)))


@scenario("authorized-lawyer", profiles=ADULT, seed="Client Authorizes Disclosure: lawyer",
          weight=4)
def authorized_lawyer(ch: Chart) -> None:
    _authorized_case(ch, "authorized-lawyer")


@scenario("authorized-source-attachment", profiles=ADULT,
          seed="Client Authorizes Disclosure: signed form attached")
def authorized_attachment(ch: Chart) -> None:
    _authorized_case(ch, "authorized-source-attachment", "insurer",
                     signature=ch.rng.choice(["attachment", "reference"]))


@scenario("authorized-untyped-root", profiles=ADULT,
          seed="Client Authorizes Disclosure: provision without type")
def authorized_untyped(ch: Chart) -> None:
    _authorized_case(ch, "authorized-untyped-root", "insurer", kind=None)


@scenario("authorized-idscl-category", profiles=ADULT,
          seed="Client Authorizes Disclosure: IDSCL category, no policyRule")
def authorized_idscl(ch: Chart) -> None:
    _authorized_case(ch, "authorized-idscl-category", "school", policy_rule=None,
                     categories=[fb.concept(fb.ACT_CODE, "IDSCL",
                                            "information disclosure")])


@scenario("authorized-by-identifier", profiles=ADULT,
          seed="Client Authorizes Disclosure: recipient known by identifier only")
def authorized_identifier(ch: Chart) -> None:
    t = ch.slot()
    who = {"identifier": {"system": "http://hl7.org/fhir/sid/us-npi",
                          "value": f"1{ch.index:06d}{ch._serial:03d}"},
           "display": "Dr. Lee Marsh, independent psychiatrist"}
    cid = ch.authorization("authorized-by-identifier", signed_before(ch, t), who)
    ch.disclose("authorized-by-identifier", t, ["PATRQT"], who, [ch.data("summary", t)],
                const(authorized(cid)))


@scenario("authorized-purpose-descendant", profiles=ADULT,
          seed="Treatment authorization covers emergency treatment (ActReason hierarchy)")
def authorized_descendant(ch: Chart) -> None:
    t = ch.slot()
    doctor = ch.clinician()
    cid = ch.authorization("authorized-purpose-descendant", signed_before(ch, t), doctor,
                           ["TREAT"])
    ch.disclose("authorized-purpose-descendant", t, ["ETREAT"], doctor,
                [ch.data("progress", t)], const(authorized(cid)))


@scenario("authorized-two-consents", profiles=ADULT,
          seed="Two valid authorizations: the earlier signed is the basis")
def authorized_two(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorized-two-consents", signed_before(ch, t, 10, 30), recipient)
    first = ch.authorization("authorized-two-consents", signed_before(ch, t, 60, 200),
                             recipient)
    ch.disclose("authorized-two-consents", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(authorized(first)))


@scenario("authorization-expired", profiles=ADULT, seed="Authorization expired", weight=3)
def expired(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorization-expired", signed_before(ch, t, 250, 400), recipient,
                     months=6)
    ch.disclose("authorization-expired", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(unauthorized("authorization-expired")))


@scenario("authorization-revoked", profiles=ADULT, seed="Authorization revoked", weight=2)
def revoked(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    revoked_at = t - ch.rng.randint(2, 15) * DAY
    ch.authorization("authorization-revoked", signed_before(ch, t, 60, 120), recipient,
                     end=revoked_at, status="inactive",
                     meta={"lastUpdated": fb.instant(revoked_at)})
    ch.disclose("authorization-revoked", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(unauthorized("authorization-revoked")))


@scenario("authorization-revoked-family", profiles=ADULT,
          seed="Family authorization revoked, then a family disclosure")
def revoked_family(ch: Chart) -> None:
    t = ch.slot()
    sister = ch.relative("SIS", "sister")
    revoked_at = t - ch.rng.randint(2, 15) * DAY
    ch.authorization("authorization-revoked-family", signed_before(ch, t, 60, 120), sister,
                     ["FAMRQT"], end=revoked_at, status="inactive")
    ch.disclose("authorization-revoked-family", t, ["FAMRQT"], sister, [ch.data("summary", t)],
                const(review(FAMILY, "authorization-revoked")))


@scenario("authorization-revoked-later", profiles=ADULT,
          seed="Authorization revoked after the disclosure still covers it")
def revoked_later(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    revoked_at = t + ch.rng.randint(5, 40) * DAY
    cid = ch.authorization("authorization-revoked-later", signed_before(ch, t), recipient,
                           end=revoked_at, status="inactive")
    ch.disclose("authorization-revoked-later", t, ["PATRQT"], recipient,
                [ch.data("summary", t)], const(authorized(cid)))


@scenario("authorization-unsigned", profiles=ADULT, seed="Authorization never signed", weight=2)
def unsigned(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("records")
    ch.authorization("authorization-unsigned", signed_before(ch, t), recipient,
                     signature=ch.rng.choice([None, "unsigned-provenance"]))
    ch.disclose("authorization-unsigned", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(unauthorized("authorization-unsigned")))


@scenario("authorization-not-active", profiles=ADULT, seed="Authorization still a draft")
def draft(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorization-not-active", signed_before(ch, t), recipient,
                     status=ch.rng.choice(["draft", "proposed", "rejected"]))
    ch.disclose("authorization-not-active", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(unauthorized("authorization-not-active")))


@scenario("authorization-not-yet-valid", profiles=ADULT,
          seed="Authorization whose period starts after the disclosure")
def not_yet(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    ch.authorization("authorization-not-yet-valid", signed_before(ch, t), recipient,
                     start=t + ch.rng.randint(3, 30) * DAY)
    ch.disclose("authorization-not-yet-valid", t, ["PATRQT"], recipient,
                [ch.data("summary", t)], const(unauthorized("authorization-not-yet-valid")))


@scenario("authorization-signed-after", profiles=ADULT,
          seed="Authorization signed after the records went out")
def signed_after(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorization-signed-after", t + ch.rng.randint(1, 10) * DAY, recipient,
                     start=t - 5 * DAY)
    ch.disclose("authorization-signed-after", t, ["PATRQT"], recipient,
                [ch.data("summary", t)], const(unauthorized("authorization-not-yet-valid")))


@scenario("authorization-wrong-recipient", profiles=ADULT,
          seed="Authorization names another recipient", weight=2)
def wrong_recipient(ch: Chart) -> None:
    t = ch.slot()
    ch.authorization("authorization-wrong-recipient", signed_before(ch, t), ch.org("law"))
    ch.disclose("authorization-wrong-recipient", t, ["PATRQT"], ch.org("insurer"),
                [ch.data("summary", t)], const(unauthorized("recipient-not-covered")))


@scenario("authorization-wrong-purpose", profiles=ADULT,
          seed="Authorization for another purpose")
def wrong_purpose(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorization-wrong-purpose", signed_before(ch, t), recipient, ["HLEGAL"])
    ch.disclose("authorization-wrong-purpose", t, ["PATRQT"], recipient,
                [ch.data("summary", t)], const(unauthorized("purpose-not-covered")))


@scenario("npp-only-employer", profiles=ADULT,
          seed="Employer without authorization; only the privacy notice on file")
def npp_only(ch: Chart) -> None:
    t = ch.slot()
    signed = signed_before(ch, t, 100, 300)
    prov = fb.provision(start=signed.replace(hour=0, minute=0, second=0))
    ch.consent("npp-only-employer", signed, prov, policy_rule="hipaa-npp",
               categories=[fb.concept(fb.CONSENT_CATEGORY, "npp", "Notice of Privacy Practices"),
                           fb.concept(fb.LOINC, "57016-8",
                                      "Privacy policy acknowledgement Document")],
               policy_uri="https://clinic.example/policies/notice-of-privacy-practices/2024")
    ch.disclose("npp-only-employer", t, ["PATRQT"], ch.org("employer"), [ch.data("summary", t)],
                const(unauthorized("not-an-authorization")))


# ---- who may sign ------------------------------------------------------------------------------

def _signer_case(ch: Chart, name: str, signer: str, expect: Callable[[str], Expectation],
                 data: str = "summary", labels: list[str] | None = None,
                 kind: str = "school") -> None:
    t = ch.slot()
    recipient = ch.org(kind)
    cid = ch.authorization(name, signed_before(ch, t, 10, 40), recipient, signer=signer,
                           labels=labels)
    ch.disclose(name, t, ["PATRQT"], recipient, [ch.data(data, t)], expect(cid))


@scenario("minor-self-authorization", profiles=MINOR,
          seed="Minors: a minor signs alone for ordinary records")
def minor_self(ch: Chart) -> None:
    _signer_case(ch, "minor-self-authorization", ch.patient,
                 lambda _c: const(review("minor-self-authorization")), data="progress")


@scenario("minor-self-authorization-adol", profiles=MINOR,
          seed="Minors: a minor authorizes release of care they consented to (ADOL)")
def minor_adol(ch: Chart) -> None:
    _signer_case(ch, "minor-self-authorization-adol", ch.patient,
                 lambda c: const(authorized(c)), data="adol", labels=["ADOL", "MH"])


@scenario("guardian-signed-minor", profiles=MINOR, seed="Minors: guardian signs")
def guardian_minor(ch: Chart) -> None:
    _signer_case(ch, "guardian-signed-minor", ch.relative("GUARD", "guardian"),
                 lambda c: const(authorized(c)))


@scenario("parent-signed-minor", profiles=MINOR, seed="Minors: parent signs", weight=2)
def parent_minor(ch: Chart) -> None:
    code = ch.rng.choice(["PRN", "MTH", "FTH"])
    _signer_case(ch, "parent-signed-minor", ch.relative(code, "parent"),
                 lambda c: const(authorized(c)))


@scenario("parent-signed-adol-data", profiles=MINOR,
          seed="Minors: parent signs for care the minor consented to")
def parent_adol(ch: Chart) -> None:
    _signer_case(ch, "parent-signed-adol-data", ch.relative("MTH", "mother"),
                 lambda _c: const(unauthorized("authorizer-not-permitted")), data="adol",
                 labels=["ADOL", "MH"])


@scenario("parent-signed-adult", profiles=ADULT, seed="Parent signs for an adult client")
def parent_adult_signs(ch: Chart) -> None:
    _signer_case(ch, "parent-signed-adult", ch.relative("FTH", "father"),
                 lambda _c: const(unauthorized("authorizer-not-permitted")), kind="law")


@scenario("guardian-signed-adult", profiles=ADULT, seed="Guardian signs for an adult client")
def guardian_adult(ch: Chart) -> None:
    code, shown = ch.rng.choice([("GUARD", "guardian"),
                                 ("HPOWATT", "healthcare power of attorney")])
    _signer_case(ch, "guardian-signed-adult", ch.relative(code, shown),
                 lambda c: const(authorized(c)), kind="insurer")


@scenario("spouse-signed", profiles=ADULT, seed="Couples: spouse signs for the client")
def spouse_signs(ch: Chart) -> None:
    _signer_case(ch, "spouse-signed", ch.relative("SPS", "spouse"),
                 lambda _c: const(unauthorized("authorizer-not-permitted")), kind="law")


@scenario("young-adult-self-authorization", profiles=YOUNG,
          seed="A client of 18-20 who is a minor only under state law signs alone")
def young_self(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    signed = t - ch.rng.randint(5, 20) * DAY
    cid = ch.authorization("young-adult-self-authorization", signed, recipient)
    ch.disclose("young-adult-self-authorization", t, ["PATRQT"], recipient,
                [ch.data("summary", t)],
                lambda j: review("minor-self-authorization") if j.minor(ch.birth, signed)
                else authorized(cid))


# ---- sensitive data and the authorization ---------------------------------------------------

@scenario("psychotherapy-notes-authorized", profiles=ADULT,
          seed="Psychotherapy notes released on a specific authorization")
def psynotes_ok(ch: Chart) -> None:
    _authorized_case(ch, "psychotherapy-notes-authorized", data="psynote",
                     labels=["PSYTHPN", "HIPAAPsyNotes"])


@scenario("psychotherapy-notes-general-authorization", profiles=ADULT,
          seed="Psychotherapy notes released on a general authorization", weight=2)
def psynotes_general(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("psychotherapy-notes-general-authorization", signed_before(ch, t),
                     recipient)
    ch.disclose("psychotherapy-notes-general-authorization", t, ["PATRQT"], recipient,
                [ch.data("psynote", t)], const(unauthorized(PSY)))


@scenario("treatment-authorized-psychotherapy-notes", profiles=ADULT,
          seed="Psychotherapy notes to the treating psychiatrist with a specific authorization")
def treatment_psynotes_ok(ch: Chart) -> None:
    t = ch.slot()
    doctor = ch.clinician()
    cid = ch.authorization("treatment-authorized-psychotherapy-notes", signed_before(ch, t),
                           doctor, ["TREAT"], labels=["PSYTHPN", "HIPAAPsyNotes"])
    ch.disclose("treatment-authorized-psychotherapy-notes", t, ["TREAT"], doctor,
                [ch.data("psynote", t)], const(authorized(cid)))


@scenario("part2-consent-labelled", profiles=ADULT, seed="Part 2 records on a Part 2 consent")
def part2_labelled(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    cid = ch.authorization("part2-consent-labelled", signed_before(ch, t), recipient,
                           labels=["42CFRPart2", "SUD"])
    ch.disclose("part2-consent-labelled", t, ["PATRQT"], recipient, [ch.data("part2", t)],
                const(authorized(cid, accountable=True)))


@scenario("part2-consent-policy", profiles=ADULT,
          seed="Part 2 records on a consent citing 42 CFR Part 2")
def part2_policy(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    cid = ch.authorization("part2-consent-policy", signed_before(ch, t), recipient,
                           policy_uri=f"{fb.PART2_POLICY}/subpart-C/section-2.31")
    ch.disclose("part2-consent-policy", t, ["PATRQT"], recipient, [ch.data("part2", t)],
                const(authorized(cid, accountable=True)))


@scenario("part2-general-consent", profiles=ADULT,
          seed="Part 2 records on an ordinary authorization")
def part2_general(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("part2-general-consent", signed_before(ch, t), recipient)
    ch.disclose("part2-general-consent", t, ["PATRQT"], recipient, [ch.data("part2", t)],
                const(unauthorized(PART2)))


# ---- provision trees ---------------------------------------------------------------------------

@scenario("deny-label", profiles=ADULT,
          seed="Authorization excluding abuse records: one covered, one denied", disclosures=2)
def deny_label(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    cid = ch.authorization("deny-label", signed_before(ch, t, 60, 90), recipient,
                           nested=[fb.provision(kind="deny", action=None, labels=["SDV"])])
    earlier = t - 10 * DAY
    ch.disclose("deny-label", earlier, ["PATRQT"], recipient, [ch.data("summary", earlier)],
                const(authorized(cid)))
    ch.disclose("deny-label", t, ["PATRQT"], recipient, [ch.data("sdv", t)],
                const(unauthorized("denied-by-provision")))


@scenario("deny-mixed-labels", profiles=ADULT,
          seed="Authorization excluding abuse records; record carries MH and SDV")
def deny_mixed(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("deny-mixed-labels", signed_before(ch, t), recipient,
                     nested=[fb.provision(kind="deny", action=None, labels=["SDV"])])
    ch.disclose("deny-mixed-labels", t, ["PATRQT"], recipient, [ch.data("mixed-sdv", t)],
                const(unauthorized("denied-by-provision")))


@scenario("deny-root-nested-permit", profiles=ADULT,
          seed="Deny-by-default consent with one permitted release")
def deny_root(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    signed = signed_before(ch, t)
    begin = signed.replace(hour=0, minute=0, second=0)
    permit = fb.provision(actors=[fb.actor("IRCP", fb.ref(recipient))], purposes=["PATRQT"])
    prov = fb.provision(kind="deny", start=begin, end=begin + 360 * DAY, nested=[permit])
    cid = ch.consent("deny-root-nested-permit", signed, prov)
    ch.disclose("deny-root-nested-permit", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(authorized(cid)))


@scenario("authorization-no-expiry", profiles=ADULT, seed="Incomplete authorization: no expiry")
def no_expiry(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorization-no-expiry", signed_before(ch, t), recipient, months=None)
    ch.disclose("authorization-no-expiry", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(review("authorization-incomplete")))


@scenario("authorization-no-recipient", profiles=ADULT,
          seed="Incomplete authorization: names no recipient")
def no_recipient(ch: Chart) -> None:
    t = ch.slot()
    entity = ch.data("summary", t)
    ch.authorization("authorization-no-recipient", signed_before(ch, t), None,
                     data=[entity["what"]["reference"]])
    ch.disclose("authorization-no-recipient", t, ["PATRQT"], ch.org("records"), [entity],
                const(review("authorization-incomplete")))


@scenario("authorization-no-purpose", profiles=ADULT, seed="Incomplete authorization: no purpose")
def no_purpose_consent(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    ch.authorization("authorization-no-purpose", signed_before(ch, t), recipient, [])
    ch.disclose("authorization-no-purpose", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(review("authorization-incomplete")))


@scenario("authorization-data-period", profiles=ADULT,
          seed="Authorization limited to records of a period (dataPeriod)")
def data_period(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    ch.authorization("authorization-data-period", signed_before(ch, t), recipient,
                     data_period=(t - 400 * DAY, t - 200 * DAY))
    ch.disclose("authorization-data-period", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(review("authorization-incomplete")))


@scenario("authorization-action-not-disclose", profiles=ADULT,
          seed="Authorization whose action is not disclosure")
def action_access(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    ch.authorization("authorization-action-not-disclose", signed_before(ch, t), recipient,
                     action="access")
    ch.disclose("authorization-action-not-disclose", t, ["PATRQT"], recipient,
                [ch.data("summary", t)], const(review("authorization-incomplete")))


# ---- data limits (check 9) and a paused authorization (check 10) ---------------------------

@scenario("authorization-limited-to-a-document", profiles=ADULT, disclosures=2,
          seed="Authorization for one named document: that one covered, another not")
def data_reference(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    named = ch.data("summary", t - 20 * DAY, name="Discharge summary named on the form")
    cid = ch.authorization("authorization-limited-to-a-document", signed_before(ch, t, 40, 90),
                           recipient, data=[named["what"]["reference"]])
    ch.disclose("authorization-limited-to-a-document", t - 20 * DAY, ["PATRQT"], recipient,
                [named], const(authorized(cid)))
    ch.disclose("authorization-limited-to-a-document", t, ["PATRQT"], recipient,
                [ch.data("progress", t)], const(unauthorized("data-not-covered")))


@scenario("authorization-limited-by-class", profiles=ADULT, disclosures=2,
          seed="Authorization for treatment summaries only (class, or code)")
def data_class(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    summary = fb.coding(fb.LOINC, "34133-9", "Summary of episode note")
    limit = {"classes": [summary]} if ch.rng.random() < 0.5 else {"codes": [{"coding": [summary]}]}
    cid = ch.authorization("authorization-limited-by-class", signed_before(ch, t, 40, 90),
                           recipient, **limit)  # type: ignore[arg-type]
    ch.disclose("authorization-limited-by-class", t - 15 * DAY, ["PATRQT"], recipient,
                [ch.data("summary", t - 15 * DAY)], const(authorized(cid)))
    ch.disclose("authorization-limited-by-class", t, ["PATRQT"], recipient,
                [ch.observation_entity(t, "Depression screening", "PHQ-9 score 14")],
                const(unauthorized("data-not-covered")))


@scenario("authorization-limited-by-label", profiles=ADULT, disclosures=2,
          seed="Authorization for mental health records only (security label)")
def data_label(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("insurer")
    cid = ch.authorization("authorization-limited-by-label", signed_before(ch, t, 40, 90),
                           recipient, labels=["MH"])
    ch.disclose("authorization-limited-by-label", t - 15 * DAY, ["PATRQT"], recipient,
                [ch.data("progress", t - 15 * DAY)], const(authorized(cid)))
    ch.disclose("authorization-limited-by-label", t, ["PATRQT"], recipient,
                [ch.data(ch.rng.choice(["sdv", "claim"]), t)],
                const(unauthorized("data-not-covered")))


@scenario("deny-period", profiles=ADULT, disclosures=2,
          seed="Client paused an authorization for a month: before covered, during denied")
def deny_period(ch: Chart) -> None:
    t = ch.slot()
    recipient = ch.org("law")
    pause = fb.provision(kind="deny", action=None, start=t - 10 * DAY, end=t + 20 * DAY)
    cid = ch.authorization("deny-period", signed_before(ch, t, 60, 90), recipient,
                           nested=[pause])
    ch.disclose("deny-period", t - 30 * DAY, ["PATRQT"], recipient,
                [ch.data("summary", t - 30 * DAY)], const(authorized(cid)))
    ch.disclose("deny-period", t, ["PATRQT"], recipient, [ch.data("summary", t)],
                const(unauthorized("denied-by-provision")))
