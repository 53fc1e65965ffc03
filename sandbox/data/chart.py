"""One patient's chart, built scenario by scenario.

`Chart` hands scenarios the things they are made of (a time slot, a fresh recipient, a labelled
document, a signed Consent, a disclosure AuditEvent, a note and a client notice) and records, for
every disclosure, the function that gives the decision the contract should reach.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from . import fhirbuild as fb
from .directory import Directory, clinic_id
from .expect import Expected, Juris

Json = fb.Json
Expectation = Callable[[Juris], Expected | None]
DAY = dt.timedelta(days=1)

# data kinds: (labels, LOINC type, title)
DATA_KINDS: dict[str, tuple[list[str], str, str]] = {
    "summary": (["R", "MH"], "34133-9", "Treatment summary"),
    "progress": (["R", "MH"], "11506-3", "Progress note"),
    "psynote": (["R", "PSYTHPN", "HIPAAPsyNotes"], "11506-3",
                "Psychotherapy note (kept separate from the medical record)"),
    "part2": (["R", "42CFRPart2", "SUD"], "11506-3", "Substance use treatment note"),
    "part2-uslaw": (["R", "uslaw:42CFRPart2"], "11506-3", "Substance use program record"),
    "adol": (["R", "ADOL", "MH"], "11506-3", "Adolescent counseling note"),
    "sdv": (["R", "SDV"], "11506-3", "Trauma history assessment"),
    "mixed-sdv": (["R", "MH", "SDV"], "11506-3", "Session note including abuse history"),
    "claim": (["N"], "34133-9", "Claim attachment: dates of service and diagnosis"),
}

FIRST = ["Jordan", "Avery", "Riley", "Morgan", "Casey", "Quinn", "Harper", "Rowan", "Emerson",
         "Dakota", "Sawyer", "Reese", "Finley", "Marlo", "Elliot", "Tatum", "Noor", "Ines",
         "Tomas", "Yara", "Keon", "Lena", "Milo", "Priya"]
LAST = ["Vance", "Holt", "Ferris", "Korvath", "Wrenfield", "Pike", "League", "Marsh",
        "Quillon", "Nakamura", "Avery", "Lindqvist", "DeCampo", "Quill", "Beaumont", "Grantham",
        "Haverford", "Kessler", "Aldana", "Solano", "Okonkwo", "Brandvold", "Castaneda", "Ito"]


@dataclass
class Case:
    """One disclosure (or failed export) and what the contract should say about it."""

    disclosure: str
    scenario: str
    expect: Expectation


@dataclass
class Chart:
    index: int
    rng: random.Random
    directory: Directory
    profile: str  # adult | minor | young (19-20 in MS, 18 in AL: a minor there only)
    state: str
    anchor: dt.datetime
    birth: dt.date
    resources: list[Json] = field(default_factory=list)
    cases: list[Case] = field(default_factory=list)
    scenarios: list[str] = field(default_factory=list)
    candidates: int = 0  # patient-privacy Consents (CONTRACT 1.2 candidates)
    _serial: int = 0
    _used: set[str] = field(default_factory=set)
    _slots: int = 0

    # identity -----------------------------------------------------------------------------
    @property
    def pid(self) -> str:
        return f"p-{self.index:06d}"

    @property
    def patient(self) -> str:
        return f"Patient/{self.pid}"

    @property
    def therapist(self) -> str:
        pool = self.directory.therapists[self.state]
        return f"Practitioner/{pool[self.index % len(pool)]}"

    @property
    def therapist_role(self) -> str:
        """The therapist's PractitionerRole (some systems log the role, not the person)."""
        return self.therapist.replace("Practitioner/pr-", "PractitionerRole/prr-")

    @property
    def clinic(self) -> str:
        return f"Organization/{clinic_id(self.state)}"

    def new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{self.index:06d}-{self._serial:02d}"

    def add(self, resource: Json) -> str:
        self.resources.append(resource)
        return f"{resource['resourceType']}/{resource['id']}"

    # time ---------------------------------------------------------------------------------
    def slot(self) -> dt.datetime:
        """A disclosure time near the anchor; young adults stay within their narrow age band."""
        self._slots += 1
        spread = 80 if self.profile == "young" else 150
        days = self.rng.randint(-spread, spread)
        minutes = self.rng.randint(14 * 60, 22 * 60)
        base = self.anchor.replace(hour=0, minute=0, second=0)
        return base + days * DAY + dt.timedelta(minutes=minutes + self._slots)

    # parties ------------------------------------------------------------------------------
    def org(self, kind: str) -> str:
        """A recipient of this kind that no other scenario on this chart uses."""
        for candidate in self.directory.pool(kind, self.state) + self.directory.pools["records"]:
            if candidate not in self._used:
                self._used.add(candidate)
                return candidate
        raise RuntimeError(f"recipient pools exhausted for {self.pid}")

    def clinician(self) -> str:
        return self.org("clinician")

    def relative(self, code: str | None, display: str, text: str | None = None) -> str:
        """A RelatedPerson; code None gives a relationship in text only (a threatened person)."""
        rel = (fb.concept(fb.ROLE_CODE, code, display) if code
               else {"text": text or display})
        given = self.rng.choice(FIRST)
        family = LAST[(self.index + len(self.resources)) % len(LAST)]
        return self.add(fb.related_person(self.new_id("rp"), self.pid, family, given, rel))

    # data ---------------------------------------------------------------------------------
    def data(self, kind: str, t: dt.datetime, *, name: str | None = None) -> Json:
        """A labelled record dated before t, returned as a disclosure entity."""
        labels, loinc, title = DATA_KINDS[kind]
        when = t - self.rng.randint(1, 20) * DAY
        did = self.new_id("dr")
        self.add(fb.document(did, self.pid, when, fb.concept(fb.LOINC, loinc), title, labels,
                             self.therapist))
        return fb.audit_entity(fb.ref(f"DocumentReference/{did}"), name=name or title)

    def observation_entity(self, t: dt.datetime, text: str, value: str) -> Json:
        oid = self.new_id("obs")
        self.add(fb.observation(oid, self.pid, t - dt.timedelta(hours=3), text, value,
                                ["R", "MH"], self.therapist))
        return fb.audit_entity(fb.ref(f"Observation/{oid}"), name=text)

    def instrument(self, code: str, when: dt.datetime, description: str) -> Json:
        did = self.new_id("dr")
        title = {"court-order": "Court order", "warrant": "Warrant", "subpoena": "Subpoena",
                 "satisfactory-assurance": "Satisfactory assurance",
                 "part2-court-order": "42 CFR Part 2 court order",
                 "administrative-request": "Administrative request"}[code]
        self.add(fb.document(did, self.pid, when,
                             fb.concept(fb.LEGAL_INSTRUMENT, code, title), title, [], None,
                             description=description))
        return fb.audit_entity(fb.ref(f"DocumentReference/{did}"), name=title)

    # consents -----------------------------------------------------------------------------
    def consent(self, scenario: str, signed: dt.datetime, prov: Json | None, *,
                signer: str | None = None, signature: str | None = "provenance",
                scope: str = "patient-privacy", **kwargs: object) -> str:
        """A Consent; `signature` is provenance | unsigned-provenance | attachment | reference |
        None (no trace of a signature at all)."""
        cid = self.new_id("c")
        signer = signer or self.patient
        source = None
        if signature == "attachment":
            source = {"sourceAttachment": {"contentType": "application/pdf",
                                           "title": "Signed authorization (scan)",
                                           "creation": fb.instant(signed)}}
        elif signature == "reference":
            form = self.new_id("dr")
            self.add(fb.document(form, self.pid, signed,
                                 fb.concept(fb.LOINC, "64292-6", "Release of information consent"),
                                 "Signed authorization for release of information (scan)", [],
                                 self.therapist))
            source = {"sourceReference": fb.ref(f"DocumentReference/{form}")}
        meta = kwargs.pop("meta", None) or {}
        meta = {**meta, **fb.scenario_tag(scenario)}
        self.add(fb.consent(cid, self.pid, signed, signer, self.clinic, scope=scope, prov=prov,
                            source=source, meta=meta, **kwargs))  # type: ignore[arg-type]
        if signature in ("provenance", "unsigned-provenance"):
            self.add(fb.signature_provenance(self.new_id("prov"), f"Consent/{cid}", signer,
                                             signed, signed=signature == "provenance"))
        if scope == "patient-privacy":
            self.candidates += 1
        return cid

    def authorization(self, scenario: str, signed: dt.datetime, recipient: str | Json | None,
                      purposes: list[str] | None = None, *, months: int | None = 12,
                      start: dt.datetime | None = None, labels: list[str] | None = None,
                      nested: list[Json] | None = None, kind: str | None = "permit",
                      data: list[str] | None = None, data_period: tuple[dt.datetime,
                      dt.datetime] | None = None, action: str | None = "disclose",
                      end: dt.datetime | None = None, classes: list[Json] | None = None,
                      codes: list[Json] | None = None, **kwargs: object) -> str:
        """A release-of-information authorization with one root permit (the common shape)."""
        actors = None
        if recipient is not None:
            who = fb.ref(recipient) if isinstance(recipient, str) else recipient
            actors = [fb.actor("IRCP", who)]
        begin = start or signed.replace(hour=0, minute=0, second=0)
        if end is None and months:
            end = begin + months * 30 * DAY
        prov = fb.provision(kind=kind, start=begin, end=end, actors=actors,
                            purposes=["PATRQT"] if purposes is None else purposes,
                            labels=labels, nested=nested, data=data, data_period=data_period,
                            action=action, classes=classes, codes=codes)
        return self.consent(scenario, signed, prov, **kwargs)

    # disclosures --------------------------------------------------------------------------
    def disclose(self, scenario: str, t: dt.datetime, purposes: list[str], recipient: str | Json,
                 entities: list[Json], expect: Expectation, *, outcome: str = "0",
                 outcome_desc: str | None = None, raw_purposes: list[Json] | None = None,
                 source: str | None = None) -> str:
        aid = self.new_id("ae")
        destination = fb.ref(recipient) if isinstance(recipient, str) else recipient
        purpose_json = [fb.concept(fb.ACT_REASON, p) for p in purposes] + (raw_purposes or [])
        patient = fb.audit_entity(fb.ref(self.patient), person=True)
        if source is None:
            source = self.therapist_role if self.rng.random() < 0.2 else self.therapist
        self.add(fb.disclosure_event(aid, t, purpose_json, source, destination,
                                     [patient, *entities], self.clinic, scenario,
                                     outcome=outcome, outcome_desc=outcome_desc))
        self.cases.append(Case(f"AuditEvent/{aid}", scenario, expect))
        return f"AuditEvent/{aid}"

    # the aftermath: documentation note and client notice ---------------------------------
    def aftermath(self, events: list[str], t: dt.datetime) -> tuple[str, str]:
        """Write (or not) the note and the client notice; return what 1.4 should find."""
        return self.note(events, t), self.notice(events, t)

    def note(self, events: list[str], t: dt.datetime) -> str:
        variant = self.rng.choices(
            ["final", "no-status", "amended", "none", "preliminary", "superseded", "unlinked"],
            [35, 10, 5, 28, 10, 7, 5])[0]
        if variant == "none":
            return "missing"
        status = "superseded" if variant == "superseded" else "current"
        doc_status = {"final": "final", "amended": "amended", "preliminary": "preliminary",
                      "superseded": "final", "unlinked": "final"}.get(variant)
        related = None if variant == "unlinked" else events
        self.add(fb.document(self.new_id("dr"), self.pid, t + dt.timedelta(hours=2),
                             fb.concept(fb.LOINC, "11506-3", "Progress note"),
                             "Documentation of disclosure without authorization", ["R"],
                             self.therapist, status=status, doc_status=doc_status,
                             related=related, content_type="text/plain",
                             description="Nature of the situation, who was informed and why, "
                                         "client response, consultation, steps to reduce harm"))
        return "present" if variant in ("final", "no-status", "amended") else "missing"

    def notice(self, events: list[str], t: dt.datetime) -> str:
        variants = ["sent", "withheld", "none", "no-reason", "in-progress", "wrong-recipient"]
        weights = [35, 20, 22, 8, 7, 8]
        if self.profile == "minor":
            variants.append("to-parent")
            weights.append(12)
        variant = self.rng.choices(variants, weights)[0]
        if variant == "none":
            return "missing"
        recipient = self.patient
        if variant == "to-parent":
            recipient = self.relative(self.rng.choice(["MTH", "FTH", "PRN"]), "parent")
        elif variant == "wrong-recipient":
            recipient = self.relative("FRND", "friend")
        status = {"withheld": "not-done", "no-reason": "not-done",
                  "in-progress": "in-progress"}.get(variant, "completed")
        reason = ("Telling the client now could put the person at risk; reassess at next session"
                  if variant == "withheld" else None)
        sent = t + 2 * DAY if status == "completed" else None
        self.add(fb.communication(self.new_id("comm"), self.pid, events, recipient,
                                  self.therapist, status=status, sent=sent, reason=reason,
                                  text="We discussed the disclosure made on your behalf."))
        return {"sent": "sent", "to-parent": "sent", "withheld": "withheld"}.get(variant,
                                                                               "missing")
