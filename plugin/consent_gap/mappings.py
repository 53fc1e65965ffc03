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

from consent_gap import wording
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
    parents: Mapping[str, tuple[str, ...]]  # every code, with its parents (a root: none)
    roots: frozenset[str]
    lineage_of: Mapping[str, frozenset[str]]
    displays: Mapping[str, str] = field(default_factory=dict)  # THO's display, for people
    codes: frozenset[str] = frozenset()  # codes a table lists beyond its hierarchy ([codes])

    def known(self, code: str) -> bool:
        """A code of v3-ActReason: placed in the hierarchy (the whole code system), or listed
        in an older table's [codes]."""
        return code in self.parents or code in self.codes

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
    # A disclosure sent as a Communication (1.1): its statuses, channels (category codings)
    # and the `about` types that make a Communication a client notice instead.
    communication_status: frozenset[str]
    channels: frozenset[Coding]
    notice_about_types: frozenset[str]
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


@dataclass(frozen=True, slots=True)
class Scenario:
    """A scenario of CONTRACT 6.4: the purposes it fills in, the legal instruments to attach,
    the recipients the panel suggests ((code, resource types searched) pairs), and, for a
    scenario where nothing is to be disclosed, the only steps it answers."""

    code: str
    purposes: tuple[str, ...] = ()
    instruments: tuple[str, ...] = ()
    recipients: tuple[tuple[str, tuple[str, ...]], ...] = ()
    steps_only: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepRow:
    """A row of CONTRACT 6.2's steps table: which answers it matches and its step codes."""

    decision: Decision
    steps: tuple[str, ...]
    basis: frozenset[str] | None = None
    reason: str | None = None
    if_draftable: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuideTables:
    """mappings/guide.toml: the scenarios (in the table's order) and the steps table."""

    scenarios: Mapping[str, Scenario]
    steps: tuple[StepRow, ...]

    def step_codes(self) -> frozenset[str]:
        """Every step code the tables can answer (the wording module words each)."""
        codes = {c for row in self.steps for c in (*row.steps, *row.if_draftable)}
        codes.update(c for s in self.scenarios.values() for c in s.steps_only)
        return frozenset(codes)


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
    guide: GuideTables | None = field(default=None, repr=False)
    #: The version these tables name (`[meta] ruleset`, CONTRACT 2): printed with every
    #: evaluation and written into the notes, so a practice's own tables carry their own.
    ruleset: str = ""

    def jurisdiction(self, code: str | None) -> Jurisdiction | None:
        """The jurisdiction for an ISO 3166-2 code (case-insensitive); KeyError if unknown."""
        if code is None:
            return None
        return self.jurisdictions[code.strip().upper()]


# --------------------------------------------------------------------------------------------
# Reading helpers: every error names file and entry
# --------------------------------------------------------------------------------------------


class _Section:
    """A table of a mappings file with the words its errors start with.

    Every reader below checks one value and, when it is wrong, fails with the file and the
    entry ('mappings/exceptions.toml: [[row]] #12 subpoena-only: unknown decision ...'), so a
    bad edit says where it is. The file itself is the section labelled 'file'."""

    def __init__(self, file: str, entry: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.entry = entry
        self.data = data

    def fail(self, what: str, entry: str | None = None) -> MappingsError:
        return MappingsError(f"{self.file}: {entry or self.entry}: {what}")

    def table(self, name: str) -> _Section:
        """The required table `[name]`."""
        value = self.data.get(name)
        if not isinstance(value, dict):
            raise self.fail("missing table" if value is None else "must be a table", f"[{name}]")
        return _Section(self.file, f"[{name}]", value)

    def tables(self, name: str, *, required: bool) -> list[_Section]:
        """The tables of the array `[[name]]`, each labelled '[[name]] #n'."""
        value = self.data.get(name)
        entry = f"[[{name}]]"
        if value is None and not required:
            return []
        if required and (not isinstance(value, list) or not value):
            raise self.fail("missing rows", entry)
        if not isinstance(value, list):
            raise self.fail("must be an array of tables", entry)
        out = []
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.fail("must be a table", f"{entry} #{i + 1}")
            out.append(_Section(self.file, f"{entry} #{i + 1}", item))
        return out

    def named(self, key: str) -> tuple[str, _Section]:
        """This table's name (`key`, an id or code) and the table labelled with it."""
        name = self.text(key)
        return name, _Section(self.file, f"{self.entry} {name}", self.data)

    def text(self, key: str) -> str:
        value = self.optional_text(key)
        if value is None:
            raise self.fail(f"missing {key}")
        return value

    def optional_text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{key} must be a non-empty string")
        return value

    def texts(self, key: str, *, required: bool = True) -> frozenset[str] | None:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(f"missing {key}")
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(f"{key} must be a list of non-empty strings")
        return frozenset(value)

    def reason(self) -> str:
        """The `reason`: one of CONTRACT.md section 3's codes."""
        value = self.optional_reason()
        if value is None:
            raise self.fail("missing reason")
        return value

    def optional_reason(self) -> str | None:
        value = self.optional_text("reason")
        if value is not None and value not in REASON_CODES:
            raise self.fail(f"unknown reason code {value!r}")
        return value

    def known(self, codes: Iterable[str], allowed: Iterable[str], message: str,
              entry: str | None = None) -> None:
        """Every code is one of `allowed` (a purpose, a legal instrument...); else fail with
        `message` formatted with the first unknown code's repr."""
        for code in codes:
            if code not in allowed:
                raise self.fail(message.format(repr(code)), entry)

    def choice(self, key: str, allowed: tuple[str, ...], default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value not in allowed:
            raise self.fail(f"{key} must be one of {', '.join(allowed)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"{key} must be true or false")
        return value

    def integer(self, key: str, low: int, high: int) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(f"{key} must be an integer from {low} to {high}")
        return value

    def coding(self, key: str | None = None) -> Coding:
        """The coding at `key`, or this table as a coding when no key is given."""
        if key is None:
            return self._coding(self.data, self.entry)
        return self._coding(self.data.get(key), f"{self.entry}.{key}")

    def codings(self, key: str) -> frozenset[Coding]:
        value = self.data.get(key)
        if not isinstance(value, list) or not value:
            raise self.fail(f"{key} must be a non-empty list of codings")
        return frozenset(self._coding(v, f"{self.entry}.{key}[{i}]") for i, v in enumerate(value))

    def _coding(self, value: Any, entry: str) -> Coding:
        if (not isinstance(value, dict) or not isinstance(value.get("system"), str)
                or not isinstance(value.get("code"), str) or not value["system"]
                or not value["code"]):
            raise self.fail("a coding needs a non-empty system and code", entry)
        return (value["system"], value["code"])


def _read(folder: Traversable, label: str, name: str) -> _Section:
    """A mappings file, parsed, with its [meta] source and date checked."""
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
    file = _Section(where, "file", data)
    meta = file.table("meta")
    meta.text("source")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", meta.text("date")):
        raise meta.fail("date must be YYYY-MM-DD")
    return file


# --------------------------------------------------------------------------------------------
# One builder per file
# --------------------------------------------------------------------------------------------


def _purposes(file: _Section) -> PurposeHierarchy:
    """The whole v3-ActReason hierarchy: each code's parents, every chain ending at a root.

    A code may have several parents (ActReason is a polyhierarchy): its lineage is itself and
    every code above it on any path. A code that reaches no root, or a cycle, is an error."""
    meta = file.table("meta")
    roots = meta.texts("roots") or frozenset()
    raw = file.table("parent").data
    parents: dict[str, tuple[str, ...]] = {root: () for root in roots}
    for code, parent in raw.items():
        listed = [parent] if isinstance(parent, str) else parent
        if (not isinstance(listed, list) or not listed
                or not all(isinstance(p, str) and p for p in listed)):
            raise file.fail("the parent must be a code or a list of codes", f"[parent] {code}")
        if code in roots:
            raise file.fail("a root has no parent", f"[parent] {code}")
        parents[code] = tuple(listed)
    for code, listed in parents.items():
        for parent in listed:
            if parent not in parents:
                raise file.fail(f"unknown parent {parent!r}", f"[parent] {code}")
    lineage: dict[str, frozenset[str]] = {}

    def lineage_of(code: str, path: tuple[str, ...]) -> frozenset[str]:
        found = lineage.get(code)
        if found is not None:
            return found
        if code in path:
            raise file.fail("the hierarchy has a cycle", f"[parent] {code}")
        above = frozenset((code,)).union(
            *(lineage_of(parent, (*path, code)) for parent in parents[code]))
        lineage[code] = above
        return above

    for code in parents:
        lineage_of(code, ())
    displays = {code: text for code, text in file.data.get("display", {}).items()
                if isinstance(text, str)}
    listed = file.data.get("codes", {})
    if not isinstance(listed, dict):
        raise file.fail("must be a table", "[codes]")
    codes = _Section(file.file, "[codes]", listed).texts("all", required=False)
    return PurposeHierarchy(system=meta.text("system"), parents=parents, roots=roots,
                            lineage_of=lineage, displays=displays, codes=codes or frozenset())


def _row(table: _Section, purposes: PurposeHierarchy, instruments: LegalInstruments, *,
         with_purposes: bool) -> ExceptionRow:
    """One exception row, checked against the contract: an exception never authorizes, a
    permitted or required row names its basis and the others have none."""
    row_id, row = table.named("id")
    unknown = sorted(set(row.data) - _ROW_KEYS)
    if unknown:
        raise row.fail(f"unknown key {unknown[0]!r}")
    decision = _decision(row)
    basis = row.optional_text("basis")
    if decision in (Decision.PERMITTED, Decision.REQUIRED) and basis is None:
        raise row.fail(f"a {decision} row needs a basis")
    if decision in (Decision.REVIEW, Decision.UNAUTHORIZED) and basis is not None:
        raise row.fail(f"a {decision} row has no basis")
    if "accountable" not in row.data:
        raise row.fail("missing accountable")
    codes = row.texts("purposes", required=with_purposes) or frozenset()
    if not with_purposes and codes:
        raise row.fail("this row takes no purposes")
    row.known(codes, purposes.parents, "purpose {} is not in purposes.toml")
    duty = row.texts("duty", required=False)
    row.known(duty or (), (*DUTIES, "none-given"), "unknown duty {}")
    listed = {key: row.texts(key, required=False)
              for key in ("instruments_any", "instruments_all", "part2_stands_with")}
    for key, found in listed.items():
        row.known(found or (), instruments.codes, key + ": unknown legal instrument {}")
    return ExceptionRow(
        id=row_id,
        decision=decision,
        basis=basis,
        accountable=row.flag("accountable", False),
        reason=row.optional_reason(),
        purposes=codes,
        recipient_types=row.texts("recipient_types", required=False),
        duty=duty,
        instruments_any=listed["instruments_any"],
        instruments_all=listed["instruments_all"],
        # What sensitive data does to the row (1.3): stand, review or unauthorized.
        psychotherapy_notes=row.choice("psychotherapy_notes", NARROWING, "unauthorized"),
        part2=row.choice("part2", NARROWING, "unauthorized"),
        part2_stands_with=listed["part2_stands_with"] or frozenset(),
        restrictable=row.flag("restrictable", False),
        breaks_confidentiality=row.flag("breaks_confidentiality", False),
        notice_exempt_minor=row.flag("notice_exempt_minor", False),
    )


def _decision(row: _Section) -> Decision:
    try:
        decision = Decision(row.text("decision"))
    except ValueError:
        raise row.fail(f"unknown decision {row.data.get('decision')!r}") from None
    if decision is Decision.AUTHORIZED:
        raise row.fail("an exception row cannot authorize")
    return decision


def _exceptions(file: _Section, purposes: PurposeHierarchy,
                instruments: LegalInstruments) -> ExceptionTable:
    meta = file.table("meta")
    request_codes = meta.texts("request_codes")
    meta.known(request_codes, purposes.parents, "purpose {} is not in purposes.toml",
               "[meta] request_codes")

    def read(table: _Section, with_purposes: bool = False) -> ExceptionRow:
        return _row(table, purposes, instruments, with_purposes=with_purposes)

    access = read(file.table("access"))
    rows = tuple(read(table, True) for table in file.tables("row", required=True))
    other = read(file.table("other_purpose"))
    none = read(file.table("no_purpose"))
    by_id: dict[str, ExceptionRow] = {}
    for row in (access, *rows, other, none):
        if row.id in by_id:
            raise file.fail("duplicate id", f"row {row.id}")
        by_id[row.id] = row
    by_purpose: dict[str, list[ExceptionRow]] = {}
    for row in rows:
        for code in row.purposes:
            by_purpose.setdefault(code, []).append(row)
    for code, listed in by_purpose.items():
        last = listed[-1]
        if any((last.recipient_types, last.duty, last.instruments_any, last.instruments_all)):
            raise file.fail(f"the last row for {code} must have no condition", f"row {last.id}")
    return ExceptionTable(
        request_codes=request_codes,
        ignored_alone=meta.texts("ignored_alone", required=False) or frozenset(),
        access=access,
        rows=rows,
        other_purpose=other,
        no_purpose=none,
        by_purpose={code: tuple(listed) for code, listed in by_purpose.items()},
        by_id=by_id,
    )


def _sensitivity(file: _Section) -> Sensitivity:
    psy = file.table("psychotherapy_notes")
    part2 = file.table("part2")
    return Sensitivity(
        counted_systems=file.table("labels").texts("counted_systems"),
        psychotherapy_notes=psy.codings("labels"),
        psychotherapy_reason=psy.reason(),
        part2=part2.codings("labels"),
        part2_reason=part2.reason(),
        part2_policy_prefix=part2.text("policy_uri_prefix"),
        adolescent=file.table("adolescent").codings("labels"),
    )


def _representatives(file: _Section) -> Representatives:
    meta = file.table("meta")
    rel = file.table("relationships")
    always = rel.texts("always")
    minor = rel.texts("while_minor")
    both = always & minor
    if both:
        raise rel.fail(f"{sorted(both)[0]} is listed twice")
    return Representatives(
        system=meta.text("relationship_system"),
        always=always,
        while_minor=minor,
        default_age_of_majority=meta.integer("default_age_of_majority", 1, 30),
    )


def _instruments(file: _Section) -> LegalInstruments:
    codes = file.table("codes").data
    for code, text in codes.items():
        if not isinstance(text, str) or not text:
            raise file.fail("needs a description", f"[codes] {code}")
    return LegalInstruments(system=file.table("meta").text("system"), codes=dict(codes))


def _consents(file: _Section) -> ConsentCodes:
    auth = file.table("authorization")
    notice = file.table("notice")
    restriction = file.table("restriction")
    provision = file.table("provision")
    return ConsentCodes(
        scope=file.table("candidate").codings("scope"),
        authorization_policy=auth.codings("policy_rule"),
        authorization_category=auth.codings("category"),
        notice_policy=notice.codings("policy_rule"),
        notice_category=notice.codings("category"),
        restriction_policy=restriction.codings("policy_rule"),
        restriction_reason=restriction.reason(),
        recipient_roles=provision.codings("recipient_roles"),
        disclose_action=provision.coding("disclose_action"),
        data_meaning=provision.text("data_meaning"),
        resource_type_system=provision.text("resource_type_system"),
    )


def _disclosures(file: _Section) -> DisclosureCodes:
    ae = file.table("audit_event")
    communication = file.table("communication")
    doc = file.table("documentation")
    notice = file.table("client_notice")
    return DisclosureCodes(
        type=ae.codings("type"),
        subtype=ae.codings("subtype"),
        successful_outcomes=ae.texts("successful_outcomes"),
        recipient_agent_type=ae.codings("recipient_agent_type"),
        notify_types=ae.texts("notify_types"),
        communication_status=communication.texts("status"),
        channels=communication.codings("channels"),
        notice_about_types=communication.texts("notice_about_types"),
        documentation_status=doc.texts("status"),
        documentation_doc_status=doc.texts("doc_status"),
        notice_sent_status=notice.texts("sent_status"),
        notice_withheld_status=notice.texts("withheld_status"),
        own_tag=file.table("own_tag").coding(),
    )


def _jurisdictions(file: _Section, into: dict[str, Jurisdiction]) -> None:
    for table in file.tables("jurisdiction", required=False):
        code, item = table.named("code")
        if not re.fullmatch(r"[A-Z]{2}-[A-Z0-9]{1,3}", code):
            raise item.fail("code must be ISO 3166-2, like US-CA")
        if code in into:
            raise item.fail("duplicate code")
        note = item.data.get("note", "")
        into[code] = Jurisdiction(
            code=code,
            name=item.text("name"),
            duty=item.choice("duty", DUTIES),
            basis=item.optional_text("basis", "") or "",
            disputed=item.flag("disputed", False),
            note=note if isinstance(note, str) else "",
            age_of_majority=item.integer("age_of_majority", 14, 25),
        )


#: Resource types a scenario may suggest as recipients (CONTRACT 6.4: searched among these).
RECIPIENT_TYPES = ("Practitioner", "PractitionerRole", "Organization", "RelatedPerson", "Patient")


def _guide(file: _Section, purposes: PurposeHierarchy,
           instruments: LegalInstruments) -> GuideTables:
    scenarios: dict[str, Scenario] = {}
    for table in file.tables("scenario", required=True):
        code, item = table.named("code")
        if code in scenarios:
            raise item.fail("duplicate code")
        chosen = list(item.data.get("purposes") or [])
        for purpose in chosen:
            if not purposes.known(purpose):
                raise item.fail(f"unknown purpose {purpose!r}")
        attach = list(item.data.get("instruments") or [])
        item.known(attach, instruments.codes, "unknown legal instrument {}")
        recipients = []
        for i, suggestion in enumerate(item.data.get("recipient") or []):
            where = f"{item.entry} recipient #{i + 1}"
            if not isinstance(suggestion, dict) or not isinstance(suggestion.get("code"), str):
                raise item.fail("a recipient needs a code", where)
            types = suggestion.get("types") or []
            item.known(types, RECIPIENT_TYPES, "unknown recipient type {}", where)
            recipients.append((suggestion["code"], tuple(types)))
        item.texts("steps_only", required=False)  # checked: a list of codes when present
        scenarios[code] = Scenario(code, tuple(chosen), tuple(attach), tuple(recipients),
                                   tuple(item.data.get("steps_only") or ()))
    rows = []
    for row in file.tables("steps", required=True):
        steps = row.data.get("steps")
        if not isinstance(steps, list) or not steps or not all(
                isinstance(s, str) and s for s in steps):
            raise row.fail("steps must be a non-empty list of step codes")
        basis = row.texts("basis", required=False)
        try:
            decision = Decision(row.text("decision"))
        except ValueError:
            raise row.fail(f"unknown decision {row.data.get('decision')!r}") from None
        rows.append(StepRow(decision=decision, steps=tuple(steps), basis=basis,
                            reason=row.optional_reason(),
                            if_draftable=tuple(row.data.get("if_draftable") or ())))
    return GuideTables(scenarios=scenarios, steps=tuple(rows))


def _guide_file(folder: Traversable, label: str) -> tuple[str, _Section]:
    """guide.toml of the folder; a practice's own folder without one uses the packaged one
    (its scenarios and steps are the contract's, not a practice's rule)."""
    if folder.joinpath("guide.toml").is_file():
        return label, _read(folder, label, "guide.toml")
    packaged = importlib.resources.files("consent_gap.mappings_data")
    return "mappings", _read(packaged, "mappings", "guide.toml")


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


def _ruleset(tables: Mapping[str, _Section], label: str) -> str:
    """The one version the tables name in `[meta] ruleset` (CONTRACT 2). Tables that name
    none take it from the others; two that name different versions, or none at all, are
    refused: the version printed and written must be the tables', never a guess."""
    named = {name: t.data["meta"]["ruleset"] for name, t in tables.items()
             if isinstance(t.data.get("meta"), dict) and "ruleset" in t.data["meta"]}
    for name, value in named.items():
        if not isinstance(value, str) or not value.strip():
            raise MappingsError(f"{label}/{name}: [meta]: ruleset must be a non-empty string")
    versions = sorted(set(named.values()))
    if not versions:
        raise MappingsError(f"{label}: no table names its ruleset ([meta] ruleset = \"...\" "
                            "in jurisdictions/us-states.toml)")
    if len(versions) > 1:
        listed = ", ".join(f"{name} {value!r}" for name, value in sorted(named.items()))
        raise MappingsError(f"{label}: the tables name different rulesets: {listed}")
    return versions[0].strip()


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
    _, tables["guide.toml"] = _guide_file(folder, label)
    rules = Rules(
        folder=key,
        guide=_guide(tables["guide.toml"], purposes, instruments),
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
        ruleset=_ruleset(tables, label),
    )
    # Complete by construction: a code the tables use that has no words stops the start.
    unworded = wording.unworded(rules)
    if unworded:
        raise MappingsError(f"{label}/{unworded[0]} (add it to consent_gap.wording)")
    return rules
