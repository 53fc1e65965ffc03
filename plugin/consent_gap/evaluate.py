"""`evaluate`: FHIR data in, a Report of findings out (CONTRACT.md section 2).

The one entry point the CLI, the scan and the panel share: normalize the resources, decide
every disclosure with the pure engine, word each finding, and order them as the contract says.
A caller that decides more than once per run (the scan's batches) or that should fail before
reading its input (the CLI) binds the rules and the jurisdiction first with `evaluator`: the
jurisdiction is resolved there, once per run, by `resolve_jurisdiction`, the only place that
looks a code up.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from consent_gap.domain import (
    TRACE_CONVERSIONS,
    TRACE_PART2,
    TRACE_PSYCHOTHERAPY_NOTES,
    TRACE_RULE,
    Chart,
    Disclosure,
    Finding,
    Problem,
)
from consent_gap.engine import Outcome, Prepared, decide, is_authorization
from consent_gap.explain import explain
from consent_gap.mappings import Jurisdiction, Rules, load_rules
from consent_gap.normalize import (
    InputError,
    NotPerPatient,
    Problems,
    format_instant,
    index_ndjson,
    normalize,
    read_group,
    read_released,
)
from consent_gap.wording import names as named

__all__ = ["Evaluator", "InputError", "NotPerPatient", "Report", "by_patient", "evaluate",
           "evaluator", "gc_paused"]


@dataclass(frozen=True)
class Report:
    """The findings (contract order) and the resources that could not be read."""

    findings: list[Finding] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    ruleset: str = ""  # the rules' own version (mappings [meta] ruleset)
    jurisdiction: str | None = None
    # The normalized chart of every patient the data names, so a caller that shows more than
    # the findings (the panel's timeline of authorizations) need not normalize again.
    charts: dict[str | None, Chart] = field(default_factory=dict, repr=False, compare=False)
    # Each disclosure as read, by reference: a proposal's check (CONTRACT 6) matches its deny
    # provisions against the very disclosure the engine decided.
    disclosures: dict[str, Disclosure] = field(default_factory=dict, repr=False, compare=False)
    # What the human text calls the things the findings that call for a write-back name
    # (recipients, records, instruments, Consents), by reference: filled by an evaluator made
    # with `named=True` (the scan's), for its alerts and notes (`text_names`).
    names: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def to_json(self, *, native: bool = False) -> dict:
        """Exactly the JSON of CONTRACT.md section 2; `native`: the findings' as they hold
        it (`Finding.to_json`), for orjson."""
        return {
            "ruleset": self.ruleset,
            "findings": [f.to_json(native=native) for f in self.findings],
            "problems": [p.to_json() for p in self.problems],
        }


def resolve_jurisdiction(rules: Rules, code: str | None) -> Jurisdiction | None:
    """The jurisdiction for a code, or InputError saying what a code looks like."""
    if code is None:
        return None
    try:
        return rules.jurisdiction(code)
    except KeyError:
        pass
    guess = f"US-{code.strip().upper()}"
    if guess in rules.jurisdictions:
        hint = f"did you mean {guess}?"
    elif rules.jurisdictions:
        hint = (f"expected the ISO 3166-2 code of one of the {len(rules.jurisdictions)} "
                f"jurisdictions in the table, such as US-CA")
    else:
        hint = "no jurisdiction table is installed"
    raise InputError(f"unknown jurisdiction {code!r}; {hint}")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run a block without the cyclic garbage collector, then put it back as it was.

    A run builds hundreds of thousands of small objects (domain objects, findings) and frees
    none until it returns, and none of them form cycles: every automatic collection would
    only rescan the growing heap, parsed JSON included, for nothing. With the collector on,
    evaluate takes about 1.7 times as long on bench/evaluate.py's 20,000 disclosures.
    Reference counting still frees everything. The previous state is restored even on an
    exception, so a library caller (the scan, the panel, tests) keeps its collector; nested
    uses leave it as the outer one set it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass(frozen=True)
class Evaluator:
    """`evaluate` bound to one run's rules and its jurisdiction, already resolved."""

    rules: Rules
    place: Jurisdiction | None = None
    base: str | None = None  # the FHIR base being read (1.1 References)
    named: bool = False  # fill Report.names (the scan: its alerts and notes name things)

    def __call__(self, data: Any, *, base: str | None = None) -> Report:
        """Decide every disclosure in `data`; runs with the cyclic collector paused. With
        `named`, `data` is read twice: pass a list or a Bundle, not a stream."""
        with gc_paused():
            report = _evaluate(data, self.rules, self.place, base or self.base)
            if not self.named:
                return report
            from consent_gap.writeback import kinds_for  # only the scan needs it

            owing = [f for f in report.findings if kinds_for(f)]
            return replace(report, names=text_names(data, report, self.rules, owing))


def evaluator(jurisdiction: str | None = None, *, rules: Rules | None = None,
              base: str | None = None, named: bool = False) -> Evaluator:
    """The pipeline for one run: the rules (the packaged tables by default), the
    jurisdiction, resolved now (InputError when the code is unknown), and the FHIR base the
    run reads (the scan's or the panel's server; a file's Bundle names its own). `named`:
    each Report also holds the names its alerts and notes use (`text_names`)."""
    rules = rules if rules is not None else load_rules()
    return Evaluator(rules, resolve_jurisdiction(rules, jurisdiction), base, named)


def consent_names(rules: Rules, chart: Chart) -> dict[str, str]:
    """Each of the chart's Consents as the human text calls it (`wording.names.consents`)."""
    return named.consents(chart.consents, lambda auth: is_authorization(rules, auth))


def text_names(data: Any, report: Report, rules: Rules,
               findings: Iterable[Finding]) -> dict[str, str]:
    """What the human text about `findings` (alerts, notes, the panel's confirmations) calls
    the things they name, by reference: recipients by name, records and legal instruments by
    type and title (read from `data`, the resources `report` was decided from), Consents by
    kind and day. Empty when `findings` is; a second reading of `data`, so only what is
    written about pays for it."""
    findings = list(findings)
    if not findings:
        return {}
    releases = read_released(data, rules, [f.disclosure for f in findings])
    names = named.of_releases(releases, findings)
    for patient in dict.fromkeys(f.patient for f in findings):
        chart = report.charts.get(patient)
        if chart is not None:
            names.update(consent_names(rules, chart))
    return names


def evaluate(data: Any, jurisdiction: str | None = None, *, rules: Rules | None = None,
             base: str | None = None) -> Report:
    """Decide every disclosure in a FHIR Bundle (any type but history) or list of resources.

    `base` is the FHIR base being read (CONTRACT 1.1 References: an absolute reference on it
    names a resource of the data set; one on another server never does); a Bundle's fullUrls
    add their own. Raises InputError (a ValueError) when the input is unusable as a whole; a
    resource that cannot be read becomes a Problem and everything else is still decided. Runs
    with the cyclic collector paused (see `gc_paused`). One call is one run: `evaluator` binds
    the rules and jurisdiction for several.
    """
    return evaluator(jurisdiction, rules=rules, base=base)(data)


def decided_by(outcome: Outcome, rules: Rules) -> tuple[str, ...]:
    """What decided, as ids a privacy officer can look up (the way a policy engine names the
    policy that decided): the covering Consent, or the winning row of exceptions.toml; then
    the narrowing for sensitive data, and the near miss, restriction or unresolved data that
    turned the decision (Finding.decided_by)."""
    rows = outcome.rows or ((outcome.row,) if outcome.row is not None else ())
    converted = outcome.converted if outcome.converted in TRACE_CONVERSIONS else None
    if not rows:  # the covering Consent, if any (authorized, or so until its data proved
        # unresolved): the first result without a reason (a loop, no generator)
        trace: list[str] = []
        for result in outcome.candidates:
            if result[1] is None:
                if result[0]:
                    trace.append(result[0])
                break
        if converted:
            trace.append(converted)
        return tuple(trace)
    trace = [TRACE_RULE + row.id for row in rows]  # every winning row, in purpose order (1.3)
    cause = outcome.cause
    if cause:  # the narrowing for sensitive data, unless a winning row gave that code itself
        sensitivity = rules.sensitivity
        narrowing = (TRACE_PART2 if cause == sensitivity.part2_reason
                     else TRACE_PSYCHOTHERAPY_NOTES if cause == sensitivity.psychotherapy_reason
                     else None)
        if narrowing and all(row.reason != cause for row in rows):
            trace.append(narrowing)
    if converted:
        trace.append(converted)
    return tuple(trace)


def _evaluate(data: Any, rules: Rules, place: Jurisdiction | None,
              base: str | None = None) -> Report:
    """Decide in the order the data lists the disclosures, then order the findings (section
    2: by occurred, then disclosure; a stable sort, so ties keep the data's order as before).

    The data lists a patient's disclosures together, so one patient's chart, prepared
    Consents and names are met while still in the processor's cache; deciding in contract
    order jumped from patient to patient (0.08-0.09 CPU s more on bench/evaluate.py's 20,000
    disclosures). No decision depends on the order."""
    dataset = normalize(data, rules, base=base)
    listed = dataset.disclosures
    empty = Chart(patient=None)
    prepared = Prepared(rules)
    charts = dataset.charts
    by_patient: dict[str | None, dict[str, str]] = {}
    found = []
    patient: Any = _UNSEEN
    chart = empty
    names: dict[str, str] = {}
    for disclosure in listed:
        if disclosure.patient != patient:
            patient = disclosure.patient
            chart = charts.get(patient, empty)
            names = by_patient.get(patient)  # type: ignore[assignment]
            if names is None:  # once per patient: the explanation names Consents, not ids
                names = by_patient[patient] = consent_names(rules, chart)
        outcome = decide(rules, disclosure, chart, place, prepared=prepared)
        found.append(Finding.of(
            disclosure=disclosure.reference,
            patient=patient,
            occurred=format_instant(disclosure.occurred),
            recipient=disclosure.recipient_label,
            purposes=disclosure.purposes,
            decision=outcome.decision,
            basis=outcome.basis,
            reasons=outcome.reasons,
            accountable=outcome.accountable,
            documentation=outcome.documentation,
            client_notice=outcome.client_notice,
            explanation=explain(disclosure, outcome, names),
            # each result is the (Consent, reason) pair a Finding lists (its `checked`)
            consents_checked=outcome.candidates,
            notify=disclosure.notify,
            disclosed=tuple([e.reference for e in disclosure.entities if e.reference]),
            instruments=disclosure.instrument_refs,
            decided_by=decided_by(outcome, rules),
            identity=disclosure.identity,
        ))
    order = _contract_order(listed)
    return Report(findings=[found[i] for i in order], problems=dataset.problems,
                  ruleset=rules.ruleset,
                  jurisdiction=place.code if place is not None else None,
                  charts=charts,
                  disclosures={listed[i].reference: listed[i] for i in order})


_UNSEEN: Any = object()  # `_evaluate`: no patient met yet


def _contract_order(disclosures: list[Disclosure]) -> list[int]:
    """The places of `disclosures` in section 2's order: by occurred, then disclosure; ties
    in the data's order (a stable sort)."""
    return sorted(range(len(disclosures)),
                  key=lambda i: (disclosures[i].occurred, disclosures[i].reference))


def by_patient(handle: Any, run: Evaluator) -> Iterator[Report]:
    """Decide an NDJSON file one patient at a time: each patient's resources (and the
    directory resources they name) are read, decided and let go before the next, so memory
    is bounded by the largest patient, not the file. Yields one Report per patient with that
    patient's findings only; a run's problems are capped as one (`Problems`), each listed once.

    Two passes over the file (`index_ndjson`, then `read_group` per patient); NotPerPatient
    when the file holds Bundles (read it whole). Findings come per patient: a caller orders
    them (section 2: by occurred, then disclosure)."""
    index = index_ndjson(handle)
    problems = Problems()
    seen: set[tuple[str, str]] = set()
    try:
        for patient in index.groups():
            report = run(read_group(handle, index, patient))
            for problem in report.problems:
                if (problem.resource, problem.message) not in seen:
                    seen.add((problem.resource, problem.message))
                    problems.append(problem)
            findings = [f for f in report.findings if f.patient == patient]
            yield Report(findings=findings, problems=[], ruleset=report.ruleset,
                         jurisdiction=report.jurisdiction)
    finally:
        index.close()
    yield Report(findings=[], problems=problems.listed(), ruleset=run([]).ruleset,
                 jurisdiction=run.place.code if run.place is not None else None)
