"""Load the rules-as-data tables in mappings/ into typed, frozen, validated tables.

The engine holds the logic and these tables hold the codes: purpose hierarchy, exception rows,
sensitivity labels, personal-representative relationships, legal instruments, Consent classes,
disclosure codes and jurisdictions. A broken file is refused at load time with a
`MappingsError` that names the file and the entry, so a bad edit fails at start and never
silently changes a decision.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import pathlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

from consent_gap.domain import REASON_CODES, Coding, Decision

ENV_FOLDER = "CONSENT_GAP_MAPPINGS"
NARROWING = ("stand", "review", "unauthorized")
DUTIES = ("mandatory", "permissive", "none")
_ROW_KEYS = frozenset({
    "id", "decision", "basis", "accountable", "reason", "purposes", "recipient_types", "duty",
    "instruments_any", "instruments_all", "psychotherapy_notes", "part2", "part2_stands_with",
    "restrictable", "breaks_confidentiality", "notice_exempt_minor",
})


class MappingsError(ValueError):
    """A mappings table is missing or wrong: 'mappings/<file>: <entry>: <what is wrong>'."""


# --------------------------------------------------------------------------------------------
# Typed tables
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurposeHierarchy:
    """v3-ActReason purposes of use: each code with itself and all its ancestors."""

    system: str
    parents: Mapping[str, str]
    lineage_of: Mapping[str, frozenset[str]]

    def lineage(self, code: str) -> frozenset[str]:
        """The code and every code above it (an unknown code is only itself)."""
        found = self.lineage_of.get(code)
        return found if found is not None else frozenset((code,))

    def covered(self, code: str, listed: frozenset[str]) -> bool:
        """True when `code` equals a listed code or descends from one."""
        return not listed.isdisjoint(self.lineage(code))


@dataclass(frozen=True)
class ExceptionRow:
    """One row of CONTRACT.md 1.3, with its narrowing for sensitive data."""

    id: str
    decision: Decision
    basis: str | None
    accountable: bool
    reason: str | None = None
    purposes: frozenset[str] = frozenset()
    recipient_types: frozenset[str] | None = None
    duty: frozenset[str] | None = None
    instruments_any: frozenset[str] | None = None
    instruments_all: frozenset[str] | None = None
    psychotherapy_notes: str = "unauthorized"
    part2: str = "unauthorized"
    part2_stands_with: frozenset[str] = frozenset()
    restrictable: bool = False
    breaks_confidentiality: bool = False
    notice_exempt_minor: bool = False


@dataclass(frozen=True)
class ExceptionTable:
    request_codes: frozenset[str]
    ignored_alone: frozenset[str]
    access: ExceptionRow
    rows: tuple[ExceptionRow, ...]
    other_purpose: ExceptionRow
    no_purpose: ExceptionRow
    by_purpose: Mapping[str, tuple[ExceptionRow, ...]]
    by_id: Mapping[str, ExceptionRow]


@dataclass(frozen=True)
class Sensitivity:
    counted_systems: frozenset[str]
    psychotherapy_notes: frozenset[Coding]
    psychotherapy_reason: str
    part2: frozenset[Coding]
    part2_reason: str
    part2_policy_prefix: str
    adolescent: frozenset[Coding]


@dataclass(frozen=True)
class Representatives:
    system: str
    always: frozenset[str]
    while_minor: frozenset[str]
    default_age_of_majority: int


@dataclass(frozen=True)
class LegalInstruments:
    system: str
    codes: Mapping[str, str]


@dataclass(frozen=True)
class ConsentCodes:
    scope: frozenset[Coding]
    authorization_policy: frozenset[Coding]
    authorization_category: frozenset[Coding]
    notice_policy: frozenset[Coding]
    notice_category: frozenset[Coding]
    restriction_policy: frozenset[Coding]
    restriction_reason: str
    recipient_roles: frozenset[Coding]
    disclose_action: Coding
    data_meaning: str
    resource_type_system: str


@dataclass(frozen=True)
class DisclosureCodes:
    type: frozenset[Coding]
    subtype: frozenset[Coding]
    successful_outcomes: frozenset[str]
    recipient_agent_type: frozenset[Coding]
    notify_types: frozenset[str]
    documentation_status: frozenset[str]
    documentation_doc_status: frozenset[str]
    notice_sent_status: frozenset[str]
    notice_withheld_status: frozenset[str]
    own_tag: Coding


@dataclass(frozen=True)
class Jurisdiction:
    """A state's duty to warn or protect and its age of majority (CONTRACT.md section 4)."""

    code: str
    name: str
    duty: str
    basis: str = ""
    disputed: bool = False
    note: str = ""
    age_of_majority: int = 18


@dataclass(frozen=True)
class Rules:
    """Every table the normalizer and the engine read; built once, shared, never mutated."""

    folder: str
    purposes: PurposeHierarchy
    exceptions: ExceptionTable
    sensitivity: Sensitivity
    representatives: Representatives
    instruments: LegalInstruments
    consents: ConsentCodes
    disclosures: DisclosureCodes
    jurisdictions: Mapping[str, Jurisdiction]
    sources: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def jurisdiction(self, code: str | None) -> Jurisdiction | None:
        """The jurisdiction for an ISO 3166-2 code (case-insensitive); KeyError if unknown."""
        if code is None:
            return None
        return self.jurisdictions[code.strip().upper()]


# --------------------------------------------------------------------------------------------
# Reading helpers: every error names file and entry
# --------------------------------------------------------------------------------------------


class _Table:
    """A parsed TOML file plus the label used in error messages."""

    def __init__(self, label: str, data: dict[str, Any]) -> None:
        self.label = label
        self.data = data

    def fail(self, entry: str, what: str) -> MappingsError:
        return MappingsError(f"{self.label}: {entry}: {what}")

    def section(self, name: str, *, required: bool = True) -> dict[str, Any]:
        value = self.data.get(name)
        if value is None and not required:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"[{name}]", "missing table" if value is None else "must be a table")
        return value

    def text(self, where: Mapping[str, Any], key: str, entry: str, *, required: bool = True,
             default: str | None = None) -> str | None:
        value = where.get(key)
        if value is None:
            if required:
                raise self.fail(entry, f"missing {key}")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(entry, f"{key} must be a non-empty string")
        return value

    def texts(self, where: Mapping[str, Any], key: str, entry: str, *,
              required: bool = True) -> frozenset[str] | None:
        value = where.get(key)
        if value is None:
            if required:
                raise self.fail(entry, f"missing {key}")
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(entry, f"{key} must be a list of non-empty strings")
        return frozenset(value)

    def reason(self, where: Mapping[str, Any], entry: str, *,
               required: bool = True) -> str | None:
        """A `reason` that is one of CONTRACT.md section 3's codes."""
        value = self.text(where, "reason", entry, required=required)
        if value is not None and value not in REASON_CODES:
            raise self.fail(entry, f"unknown reason code {value!r}")
        return value

    def known(self, codes: Iterable[str], allowed: Iterable[str], entry: str,
              message: str) -> None:
        """Every code is one of `allowed` (a purpose, a legal instrument...); else fail with
        `message` formatted with the first unknown code's repr."""
        for code in codes:
            if code not in allowed:
                raise self.fail(entry, message.format(repr(code)))

    def flag(self, where: Mapping[str, Any], key: str, entry: str, default: bool) -> bool:
        value = where.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(entry, f"{key} must be true or false")
        return value

    def integer(self, where: Mapping[str, Any], key: str, entry: str, low: int, high: int) -> int:
        value = where.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(entry, f"{key} must be an integer from {low} to {high}")
        return value

    def coding(self, value: Any, entry: str) -> Coding:
        if (not isinstance(value, dict) or not isinstance(value.get("system"), str)
                or not isinstance(value.get("code"), str) or not value["system"]
                or not value["code"]):
            raise self.fail(entry, "a coding needs a non-empty system and code")
        return (value["system"], value["code"])

    def codings(self, where: Mapping[str, Any], key: str, entry: str) -> frozenset[Coding]:
        value = where.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(entry, f"{key} must be a non-empty list of codings")
        return frozenset(self.coding(v, f"{entry}.{key}[{i}]") for i, v in enumerate(value))


def _read(folder: Traversable, label: str, name: str) -> _Table:
    path = folder.joinpath(name)
    where = f"{label}/{name}"
    try:
        raw = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise MappingsError(f"{where}: file: missing") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingsError(f"{where}: file: not valid TOML ({exc})") from exc
    table = _Table(where, data)
    meta = table.section("meta")
    table.text(meta, "source", "[meta]")
    date = table.text(meta, "date", "[meta]")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date or ""):
        raise table.fail("[meta]", "date must be YYYY-MM-DD")
    return table


# --------------------------------------------------------------------------------------------
# One builder per file
# --------------------------------------------------------------------------------------------


def _purposes(t: _Table) -> PurposeHierarchy:
    meta = t.section("meta")
    system = t.text(meta, "system", "[meta]")
    top = t.text(meta, "top", "[meta]")
    parents = t.section("parent")
    for code, parent in parents.items():
        if not isinstance(parent, str) or not parent:
            raise t.fail(f"[parent] {code}", "the parent must be a code")
        if parent != top and parent not in parents:
            raise t.fail(f"[parent] {code}", f"unknown parent {parent!r}")
    lineage: dict[str, frozenset[str]] = {}
    for code in parents:
        seen = [code]
        current = code
        while parents.get(current, top) != top:
            current = parents[current]
            if current in seen:
                raise t.fail(f"[parent] {code}", "the hierarchy has a cycle")
            seen.append(current)
        lineage[code] = frozenset(seen)
    return PurposeHierarchy(system=system, parents=dict(parents), lineage_of=lineage)


def _row(t: _Table, raw: Any, entry: str, purposes: PurposeHierarchy,
         instruments: LegalInstruments, *, with_purposes: bool) -> ExceptionRow:
    """One exception row, checked against the contract: an exception never authorizes, a
    permitted or required row names its basis and the others have none."""
    if not isinstance(raw, dict):
        raise t.fail(entry, "must be a table")
    row_id = t.text(raw, "id", entry)
    entry = f"{entry} {row_id}"
    unknown = sorted(set(raw) - _ROW_KEYS)
    if unknown:
        raise t.fail(entry, f"unknown key {unknown[0]!r}")
    decision = _decision(t, raw, entry)
    basis = t.text(raw, "basis", entry, required=False)
    if decision in (Decision.PERMITTED, Decision.REQUIRED) and basis is None:
        raise t.fail(entry, f"a {decision} row needs a basis")
    if decision in (Decision.REVIEW, Decision.UNAUTHORIZED) and basis is not None:
        raise t.fail(entry, f"a {decision} row has no basis")
    if "accountable" not in raw:
        raise t.fail(entry, "missing accountable")
    codes = t.texts(raw, "purposes", entry, required=with_purposes) or frozenset()
    if not with_purposes and codes:
        raise t.fail(entry, "this row takes no purposes")
    t.known(codes, purposes.parents, entry, "purpose {} is not in purposes.toml")
    duty = t.texts(raw, "duty", entry, required=False)
    t.known(duty or (), (*DUTIES, "none-given"), entry, "unknown duty {}")
    listed = {key: t.texts(raw, key, entry, required=False)
              for key in ("instruments_any", "instruments_all", "part2_stands_with")}
    for key, found in listed.items():
        t.known(found or (), instruments.codes, entry, key + ": unknown legal instrument {}")
    return ExceptionRow(
        id=row_id,
        decision=decision,
        basis=basis,
        accountable=t.flag(raw, "accountable", entry, False),
        reason=t.reason(raw, entry, required=False),
        purposes=codes,
        recipient_types=t.texts(raw, "recipient_types", entry, required=False),
        duty=duty,
        instruments_any=listed["instruments_any"],
        instruments_all=listed["instruments_all"],
        psychotherapy_notes=_narrowing(t, raw, "psychotherapy_notes", entry),
        part2=_narrowing(t, raw, "part2", entry),
        part2_stands_with=listed["part2_stands_with"] or frozenset(),
        restrictable=t.flag(raw, "restrictable", entry, False),
        breaks_confidentiality=t.flag(raw, "breaks_confidentiality", entry, False),
        notice_exempt_minor=t.flag(raw, "notice_exempt_minor", entry, False),
    )


def _decision(t: _Table, raw: Mapping[str, Any], entry: str) -> Decision:
    try:
        decision = Decision(t.text(raw, "decision", entry))
    except ValueError:
        raise t.fail(entry, f"unknown decision {raw.get('decision')!r}") from None
    if decision is Decision.AUTHORIZED:
        raise t.fail(entry, "an exception row cannot authorize")
    return decision


def _narrowing(t: _Table, raw: Mapping[str, Any], key: str, entry: str) -> str:
    """What sensitive data does to a row (1.3): stand, review or unauthorized (default)."""
    value = raw.get(key, "unauthorized")
    if value not in NARROWING:
        raise t.fail(entry, f"{key} must be one of {', '.join(NARROWING)}")
    return value


def _exceptions(t: _Table, purposes: PurposeHierarchy,
                instruments: LegalInstruments) -> ExceptionTable:
    meta = t.section("meta")
    request_codes = t.texts(meta, "request_codes", "[meta]")
    t.known(request_codes, purposes.parents, "[meta] request_codes",
            "purpose {} is not in purposes.toml")
    ignored_alone = t.texts(meta, "ignored_alone", "[meta]", required=False) or frozenset()
    access = _row(t, t.section("access"), "[access]", purposes, instruments, with_purposes=False)
    raw_rows = t.data.get("row")
    if not isinstance(raw_rows, list) or not raw_rows:
        raise t.fail("[[row]]", "missing rows")
    rows = tuple(_row(t, raw, f"[[row]] #{i + 1}", purposes, instruments, with_purposes=True)
                 for i, raw in enumerate(raw_rows))
    other = _row(t, t.section("other_purpose"), "[other_purpose]", purposes, instruments,
                 with_purposes=False)
    none = _row(t, t.section("no_purpose"), "[no_purpose]", purposes, instruments,
                with_purposes=False)
    by_id: dict[str, ExceptionRow] = {}
    for row in (access, *rows, other, none):
        if row.id in by_id:
            raise t.fail(f"row {row.id}", "duplicate id")
        by_id[row.id] = row
    by_purpose: dict[str, list[ExceptionRow]] = {}
    for row in rows:
        for code in row.purposes:
            by_purpose.setdefault(code, []).append(row)
    for code, listed in by_purpose.items():
        last = listed[-1]
        if any((last.recipient_types, last.duty, last.instruments_any, last.instruments_all)):
            raise t.fail(f"row {last.id}", f"the last row for {code} must have no condition")
    return ExceptionTable(
        request_codes=request_codes,
        ignored_alone=ignored_alone,
        access=access,
        rows=rows,
        other_purpose=other,
        no_purpose=none,
        by_purpose={code: tuple(listed) for code, listed in by_purpose.items()},
        by_id=by_id,
    )


def _sensitivity(t: _Table) -> Sensitivity:
    labels = t.section("labels")
    psy = t.section("psychotherapy_notes")
    part2 = t.section("part2")
    adol = t.section("adolescent")
    return Sensitivity(
        counted_systems=t.texts(labels, "counted_systems", "[labels]"),
        psychotherapy_notes=t.codings(psy, "labels", "[psychotherapy_notes]"),
        psychotherapy_reason=t.reason(psy, "[psychotherapy_notes]"),
        part2=t.codings(part2, "labels", "[part2]"),
        part2_reason=t.reason(part2, "[part2]"),
        part2_policy_prefix=t.text(part2, "policy_uri_prefix", "[part2]"),
        adolescent=t.codings(adol, "labels", "[adolescent]"),
    )


def _representatives(t: _Table) -> Representatives:
    meta = t.section("meta")
    rel = t.section("relationships")
    always = t.texts(rel, "always", "[relationships]")
    minor = t.texts(rel, "while_minor", "[relationships]")
    both = always & minor
    if both:
        raise t.fail("[relationships]", f"{sorted(both)[0]} is listed twice")
    return Representatives(
        system=t.text(meta, "relationship_system", "[meta]"),
        always=always,
        while_minor=minor,
        default_age_of_majority=t.integer(meta, "default_age_of_majority", "[meta]", 1, 30),
    )


def _instruments(t: _Table) -> LegalInstruments:
    meta = t.section("meta")
    codes = t.section("codes")
    for code, text in codes.items():
        if not isinstance(text, str) or not text:
            raise t.fail(f"[codes] {code}", "needs a description")
    return LegalInstruments(system=t.text(meta, "system", "[meta]"), codes=dict(codes))


def _consents(t: _Table) -> ConsentCodes:
    auth = t.section("authorization")
    notice = t.section("notice")
    restriction = t.section("restriction")
    provision = t.section("provision")
    return ConsentCodes(
        scope=t.codings(t.section("candidate"), "scope", "[candidate]"),
        authorization_policy=t.codings(auth, "policy_rule", "[authorization]"),
        authorization_category=t.codings(auth, "category", "[authorization]"),
        notice_policy=t.codings(notice, "policy_rule", "[notice]"),
        notice_category=t.codings(notice, "category", "[notice]"),
        restriction_policy=t.codings(restriction, "policy_rule", "[restriction]"),
        restriction_reason=t.reason(restriction, "[restriction]"),
        recipient_roles=t.codings(provision, "recipient_roles", "[provision]"),
        disclose_action=t.coding(provision.get("disclose_action"),
                                 "[provision].disclose_action"),
        data_meaning=t.text(provision, "data_meaning", "[provision]"),
        resource_type_system=t.text(provision, "resource_type_system", "[provision]"),
    )


def _disclosures(t: _Table) -> DisclosureCodes:
    ae = t.section("audit_event")
    doc = t.section("documentation")
    notice = t.section("client_notice")
    return DisclosureCodes(
        type=t.codings(ae, "type", "[audit_event]"),
        subtype=t.codings(ae, "subtype", "[audit_event]"),
        successful_outcomes=t.texts(ae, "successful_outcomes", "[audit_event]"),
        recipient_agent_type=t.codings(ae, "recipient_agent_type", "[audit_event]"),
        notify_types=t.texts(ae, "notify_types", "[audit_event]"),
        documentation_status=t.texts(doc, "status", "[documentation]"),
        documentation_doc_status=t.texts(doc, "doc_status", "[documentation]"),
        notice_sent_status=t.texts(notice, "sent_status", "[client_notice]"),
        notice_withheld_status=t.texts(notice, "withheld_status", "[client_notice]"),
        own_tag=t.coding(t.section("own_tag"), "[own_tag]"),
    )


def _jurisdictions(t: _Table, into: dict[str, Jurisdiction]) -> None:
    raw = t.data.get("jurisdiction", [])
    if not isinstance(raw, list):
        raise t.fail("[[jurisdiction]]", "must be an array of tables")
    for i, item in enumerate(raw):
        entry = f"[[jurisdiction]] #{i + 1}"
        if not isinstance(item, dict):
            raise t.fail(entry, "must be a table")
        code = t.text(item, "code", entry)
        entry = f"{entry} {code}"
        if not re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", code):
            raise t.fail(entry, "code must be ISO 3166-2, like US-CA")
        if code in into:
            raise t.fail(entry, "duplicate code")
        duty = t.text(item, "duty", entry)
        if duty not in DUTIES:
            raise t.fail(entry, f"duty must be one of {', '.join(DUTIES)}")
        into[code] = Jurisdiction(
            code=code,
            name=t.text(item, "name", entry),
            duty=duty,
            basis=t.text(item, "basis", entry, required=False, default="") or "",
            disputed=t.flag(item, "disputed", entry, False),
            note=item.get("note", "") if isinstance(item.get("note", ""), str) else "",
            age_of_majority=t.integer(item, "age_of_majority", entry, 14, 25),
        )


def _toml_files(folder: Traversable) -> Iterable[str]:
    try:
        names = [p.name for p in folder.iterdir() if p.name.endswith(".toml")]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names)


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def default_folder() -> Traversable:
    """CONSENT_GAP_MAPPINGS when set, else the tables shipped in the package."""
    override = os.environ.get(ENV_FOLDER)
    if override:
        return pathlib.Path(override)
    return importlib.resources.files("consent_gap.mappings_data")


def load_rules(folder: pathlib.Path | str | None = None) -> Rules:
    """Load and validate every table (cached per folder); MappingsError names what is wrong."""
    chosen: Traversable = pathlib.Path(folder) if folder is not None else default_folder()
    return _load_cached(str(chosen), chosen if folder is None else None)


@functools.lru_cache(maxsize=8)
def _load_cached(key: str, traversable: Traversable | None) -> Rules:
    folder: Traversable = traversable if traversable is not None else pathlib.Path(key)
    if isinstance(folder, pathlib.Path) and not folder.is_dir():
        raise MappingsError(f"{key}: folder: not found")
    label = "mappings" if traversable is not None and os.environ.get(ENV_FOLDER) is None else key
    tables = {name: _read(folder, label, name) for name in (
        "purposes.toml", "exceptions.toml", "sensitivity.toml", "representatives.toml",
        "legal-instruments.toml", "consents.toml", "disclosures.toml")}
    purposes = _purposes(tables["purposes.toml"])
    instruments = _instruments(tables["legal-instruments.toml"])
    jurisdictions: dict[str, Jurisdiction] = {}
    sub = folder.joinpath("jurisdictions")
    for name in _toml_files(sub):
        table = _read(sub, f"{label}/jurisdictions", name)
        tables[f"jurisdictions/{name}"] = table
        _jurisdictions(table, jurisdictions)
    return Rules(
        folder=key,
        purposes=purposes,
        exceptions=_exceptions(tables["exceptions.toml"], purposes, instruments),
        sensitivity=_sensitivity(tables["sensitivity.toml"]),
        representatives=_representatives(tables["representatives.toml"]),
        instruments=instruments,
        consents=_consents(tables["consents.toml"]),
        disclosures=_disclosures(tables["disclosures.toml"]),
        jurisdictions=jurisdictions,
        sources={name: (t.data["meta"]["source"], t.data["meta"]["date"])
                 for name, t in tables.items()},
    )
