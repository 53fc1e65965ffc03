"""FHIR R4 JSON -> domain objects: the only reader of FHIR shapes (CONTRACT.md 1.1 and 1.2).

A disclosure is read from either of the two records 1.1 names: a BALP PrivacyDisclosure
AuditEvent, or a Communication sent out of the practice on a disclosure channel (a letter, fax
or message). Both become the same `Disclosure`, so nothing after this module knows which.

Reads plain dicts tolerantly and fast (no model validation on input): unknown elements and
extensions are ignored, missing optional elements are absent values, and a resource that
cannot be read (a date that is not a date, a shape that is not FHIR) becomes a `Problem` naming
`Type/id` while the rest of the data set is still read.
"""

from __future__ import annotations

import json
import mmap
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypedDict, TypeVar

from consent_gap.domain import (
    PARTY_TYPES,
    PROPOSAL_SYSTEM,
    Actor,
    Authorization,
    Chart,
    Coding,
    DataItem,
    Disclosure,
    Entity,
    Notice,
    Party,
    Person,
    Problem,
    Provision,
    Released,
    Releases,
    Representative,
    Written,
)
from consent_gap.mappings import Rules

try:  # parses NDJSON lines about 1.6 times as fast as json (bench/evaluate.py); optional
    import orjson
except ImportError:  # pragma: no cover - json reads the same
    orjson = None  # type: ignore[assignment]
try:  # parses a whole document faster and smaller than orjson (`_loads_whole`); optional
    import msgspec
except ImportError:  # pragma: no cover - orjson or json read the same
    msgspec = None  # type: ignore[assignment]


class InputError(ValueError):
    """The input is not usable at all (not JSON, not FHIR, a history Bundle...): one line."""


class NotPerPatient(ValueError):
    """NDJSON that cannot be split by patient (it holds Bundles): read it whole instead."""


class Unreadable(ValueError):
    """One resource cannot be read; its message becomes a Problem."""


_T = TypeVar("_T")
_NOTHING: frozenset = frozenset()
_PARTIAL = re.compile(r"(\d{4})(?:-(\d{2}))?")


# --------------------------------------------------------------------------------------------
# Primitive readers
# --------------------------------------------------------------------------------------------


def parse_instant(value: Any, where: str) -> datetime:
    """A FHIR date, dateTime or instant as a UTC instant; a date alone is its first instant."""
    if not isinstance(value, str):
        raise Unreadable(f"{where} is not a date")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        match = _PARTIAL.fullmatch(value)
        if match is None:
            raise Unreadable(f"{where} is not a date") from None
        try:
            moment = datetime(int(match[1]), int(match[2] or 1), 1)
        except ValueError:
            raise Unreadable(f"{where} is not a date") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _optional_instant(value: Any, where: str) -> datetime | None:
    return None if value is None else parse_instant(value, where)


def format_instant(moment: datetime) -> str:
    """An instant as ISO 8601 in UTC with a trailing Z."""
    text = moment.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _list(value: Any) -> list:
    """A FHIR repeating element as a list (tolerant: a single value is a list of one)."""
    if value.__class__ is list:
        return value
    if value is None:
        return []
    return [value]


def _set(items: list) -> frozenset:
    """A frozenset of what was read; the one empty frozenset when nothing was."""
    return frozenset(items) if items else _NOTHING


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _add_codings(values: Any, out: list[Coding]) -> None:
    """Append the (system, code) of each Coding in `values` that has both as strings.

    Written flat, with class checks: it runs for every coded element of every resource read.
    """
    if values.__class__ is not list:
        if values.__class__ is not dict:
            return
        values = (values,)
    for value in values:
        if value.__class__ is dict:
            system = value.get("system")
            code = value.get("code")
            if system.__class__ is str and code.__class__ is str:
                out.append((system, code))


def _codings(values: Any) -> list[Coding]:
    """Codings of a Coding or a list of them."""
    out: list[Coding] = []
    _add_codings(values, out)
    return out


def _concept_codings(concepts: Any) -> list[Coding]:
    """Codings of one CodeableConcept or a list of them (inlined `_add_codings`: this runs for
    every coded element of every resource read)."""
    if concepts.__class__ is not list:
        if concepts.__class__ is not dict:
            return []
        concepts = (concepts,)
    out: list[Coding] = []
    for concept in concepts:
        if concept.__class__ is dict:
            values = concept.get("coding")
            if values.__class__ is not list:
                if values.__class__ is not dict:
                    continue
                values = (values,)
            for value in values:
                if value.__class__ is dict:
                    system = value.get("system")
                    code = value.get("code")
                    if system.__class__ is str and code.__class__ is str:
                        out.append((system, code))
    return out


def _has_coding(values: Any, wanted: frozenset[Coding]) -> bool:
    """Whether a Coding of `values` (one or a list) is in `wanted`: `_codings` tested without
    building the list, for the tests that run on every resource read."""
    if values.__class__ is not list:
        if values.__class__ is not dict:
            return False
        values = (values,)
    for value in values:
        if value.__class__ is dict:
            system = value.get("system")
            code = value.get("code")
            if system.__class__ is str and code.__class__ is str and (system, code) in wanted:
                return True
    return False


def _has_concept(concepts: Any, wanted: frozenset[Coding]) -> bool:
    """Whether a Coding of one CodeableConcept (or a list of them) is in `wanted`."""
    if concepts.__class__ is not list:
        if concepts.__class__ is not dict:
            return False
        concepts = (concepts,)
    for concept in concepts:
        if concept.__class__ is dict and _has_coding(concept.get("coding"), wanted):
            return True
    return False


def _identity(resource: dict) -> str | None:
    """A disclosure's consent-gap business identifier as "system|value": its identifier in
    PROPOSAL_SYSTEM, else (R4 AuditEvent has no identifier) its `meta.tag` in that system;
    None when it carries neither (the write-back then keys it by its reference)."""
    identifiers = resource.get("identifier")
    if identifiers is not None:
        for identifier in _list(identifiers):
            found = _identifier(identifier)
            if found is not None and found.startswith(f"{PROPOSAL_SYSTEM}|"):
                return found
    meta = resource.get("meta")
    tags = meta.get("tag") if isinstance(meta, dict) else None
    if tags.__class__ is dict:
        tags = (tags,)
    elif tags.__class__ is not list:
        return None
    for tag in tags:  # `_codings`, inlined without its list: every AuditEvent has tags
        if tag.__class__ is dict and tag.get("system") == PROPOSAL_SYSTEM:
            code = tag.get("code")
            if code.__class__ is str:
                return f"{PROPOSAL_SYSTEM}|{code}"
    return None


def _identifier(value: Any) -> str | None:
    if isinstance(value, dict):
        system = value.get("system")
        val = value.get("value")
        if isinstance(val, str) and val:
            return f"{system if isinstance(system, str) else ''}|{val}"
    return None


def _human_name(names: Any) -> str | None:
    """The official HumanName (else the first) as display text; for the banner only."""
    usable = [n for n in _list(names) if isinstance(n, dict)]
    if not usable:
        return None
    name = next((n for n in usable if n.get("use") == "official"), usable[0])
    text = name.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    parts = [p for p in [*_list(name.get("given")), name.get("family")] if isinstance(p, str)]
    return " ".join(parts).strip() or None


class _References:
    """Turns any reference form into the canonical 'Type/id' of a resource of the data set,
    as CONTRACT.md 1.1 "References" says: a relative reference (`Type/id`), a Bundle entry's
    `fullUrl`, or an absolute URL on a FHIR base being read (`bases`: the server's, and the
    bases of the Bundle's fullUrls). An absolute URL on any other server stays as written, so
    it names nothing in the data set. A party given by identifier is the resource of the data
    set that carries it (`by_identifier`; one carried by two resources names neither)."""

    def __init__(self, bases: Iterable[str] = ()) -> None:
        self.alias: dict[str, str] = {}
        self.bases: set[str] = {b.rstrip("/") for b in bases if b}
        self.by_identifier: dict[str, str | None] = {}
        self.identifiers_of: dict[str, list[str]] = {}
        self._cache: dict[str, str] = {}

    def add_identifiers(self, key: str, identifiers: Iterable[str]) -> None:
        for identifier in identifiers:
            self.identifiers_of.setdefault(key, []).append(identifier)
            known = self.by_identifier.get(identifier, key)
            self.by_identifier[identifier] = key if known == key else None

    def canonical(self, text: str) -> str:
        found = self._cache.get(text)
        if found is None:
            found = self._cache[text] = self._resolve(text)
        return found

    def _resolve(self, text: str) -> str:
        value = self.alias.get(text)
        if value is not None:
            return value
        if "/_history/" in text:  # a versioned reference names the resource
            text = text.split("/_history/", 1)[0]
            value = self.alias.get(text)
            if value is not None:
                return value
        if text.startswith(("http://", "https://")):
            head, _, rid = text.rstrip("/").rpartition("/")
            base, _, kind = head.rpartition("/")
            if base in self.bases and kind and rid:
                return f"{kind}/{rid}"
            return text  # another server's: never one of the data set's resources
        if text.startswith(("urn:", "#")) or text.count("/") == 1:
            return text
        parts = text.strip("/").split("/")
        return f"{parts[-2]}/{parts[-1]}" if len(parts) >= 2 else text

    def of(self, reference: Any) -> str | None:
        if reference.__class__ is dict:
            text = reference.get("reference")
            if text.__class__ is str and text:
                found = self._cache.get(text)
                if found is None:
                    found = self._cache[text] = self._resolve(text)
                return found
        return None

    def who(self, reference: Any) -> str | None:
        """A party: its reference, else the resource of the data set carrying its identifier."""
        found = self.of(reference)
        if found is None and isinstance(reference, dict):
            identifier = _identifier(reference.get("identifier"))
            if identifier is not None:
                found = self.by_identifier.get(identifier)
        return found


_NO_PARTY: tuple[str | None, frozenset[str], str | None] = (None, frozenset(), None)


def _party(refs: _References, who: Any) -> tuple[str | None, frozenset[str], str | None]:
    """(whom a recipient names in the data set, the identifiers that name it, the recipient
    as written: its reference, else its identifier). By identifier alone it is the resource
    carrying that identifier; its own identifiers count for a match by identifier (check 7)."""
    ref = refs.of(who)
    identifier = _identifier(who.get("identifier")) if isinstance(who, dict) else None
    shown = ref if ref is not None else identifier
    if ref is None and identifier is not None:
        ref = refs.by_identifier.get(identifier)
    identifiers = {identifier} if identifier else set()
    if ref is not None:
        identifiers.update(refs.identifiers_of.get(ref, ()))
    return ref, frozenset(identifiers), shown


def is_foreign(reference: str) -> bool:
    """An absolute URL left as written: another server's resource (1.1 References)."""
    return reference.startswith(("http://", "https://"))


def type_of(reference: str) -> str:
    """The resource type a reference names, wherever the resource lives."""
    if is_foreign(reference):
        parts = reference.rstrip("/").split("/")
        return parts[-2] if len(parts) >= 2 else ""
    return reference.split("/", 1)[0]


# --------------------------------------------------------------------------------------------
# The data set
# --------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """The normalized input: disclosures, one chart per patient, and what could not be read."""

    disclosures: list[Disclosure] = field(default_factory=list)
    # one per patient named by a disclosure, a Consent or a Patient resource (None: no patient)
    charts: dict[str | None, Chart] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


PROBLEMS_LISTED = 100
"""At most this many problems are listed; the rest are counted in one summary line."""
EARLY_STOP = 1000
"""Items of an array read before giving up on input in which none is a resource."""


class Problems(list):
    """The problems of one run, capped: the first PROBLEMS_LISTED are kept, the rest counted,
    so a file of millions of junk items costs neither memory nor pages of output."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def append(self, problem: Problem) -> None:  # type: ignore[override]
        if len(self) < PROBLEMS_LISTED:
            super().append(problem)
        else:
            self.dropped += 1

    def extend(self, problems: Iterable[Problem]) -> None:  # type: ignore[override]
        for problem in problems:
            self.append(problem)
        self.dropped += getattr(problems, "dropped", 0)

    def add_skipped(self, first: int, count: int, message: str) -> None:
        """`count` items from index `first` that are not resources (one run of scalars)."""
        room = max(0, min(count, PROBLEMS_LISTED - len(self)))
        for i in range(first, first + room):
            super().append(Problem(f"item {i}", message))
        self.dropped += count - room

    def listed(self) -> list[Problem]:
        """The problems to print: the kept ones, then how many more there were."""
        if not self.dropped:
            return list(self)
        return [*self, Problem("input", f"{self.dropped} more problem(s) not listed")]


class Skipped:
    """A run of array items that cannot be resources (numbers, true/false/null), read
    without building them (`parse_text`): where it starts and how many items it holds."""

    __slots__ = ("count", "first")

    def __init__(self, first: int, count: int) -> None:
        self.first = first
        self.count = count


def resources_of(data: Any) -> tuple[list[tuple[dict, str | None]], Problems]:
    """The resources (with their Bundle fullUrl) of a Bundle or a list, and the items that are
    not resources. InputError when the input is not one of these, or holds items and not one
    of them is a resource (read no further than EARLY_STOP items without one); an empty
    Bundle or list is an empty data set."""
    problems = Problems()
    return list(_resources(data, problems)), problems


def _resources(data: Any, problems: Problems) -> Iterator[tuple[dict, str | None]]:
    """`resources_of` item by item, its problems appended to `problems` (empty at the start)
    as they are met: `normalize` indexes each resource as it comes, so the Bundle's 71,000
    entries of bench/evaluate.py's 20k are not walked twice nor listed in between (0.05 CPU s:
    the second walk touched every resource again, far apart in memory)."""
    found = 0
    if isinstance(data, dict):
        for item in _bundle_items(data, problems, top=True):
            found += 1
            yield item
    elif isinstance(data, list):
        i = 0
        for item in data:
            if item.__class__ is Skipped:
                problems.add_skipped(i, item.count, "is not a FHIR resource")
                i += item.count
            elif isinstance(item, dict) and item.get("resourceType") == "Bundle":
                for nested in _bundle_items(item, problems, top=False, where=f"item {i}"):
                    found += 1
                    yield nested
                i += 1
            elif isinstance(item, dict) and isinstance(item.get("resourceType"), str):
                found += 1
                yield item, None
                i += 1
            else:
                problems.append(Problem(f"item {i}", "is not a FHIR resource"))
                i += 1
            if not found and i >= EARLY_STOP:
                break
    else:
        raise InputError("the input is not a FHIR Bundle or a JSON array of resources")
    if (problems or problems.dropped) and not found:  # something was there, none of it FHIR
        first = problems[0]
        raise InputError(f"the input holds no FHIR resource ({first.resource} {first.message})")


def _bundle_items(bundle: dict, problems: Problems, *, top: bool,
                  where: str = "") -> Iterator[tuple[dict, str | None]]:
    """A Bundle's resources with their fullUrls. At the top an unusable Bundle is an
    InputError; nested in a list it is a Problem and the rest of the list is still read."""
    if bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType")
        what = f"a {kind} resource" if isinstance(kind, str) else "a JSON object"
        raise InputError(f"the input is {what}, not a FHIR Bundle or a JSON array of resources")
    bundle_id = bundle.get("id")
    label = f"Bundle/{bundle_id}" if isinstance(bundle_id, str) and bundle_id else where
    entries = bundle.get("entry", [])
    if bundle.get("type") == "history":
        message = "a history Bundle holds versions, not a data set; export the current resources"
    elif not isinstance(entries, list):
        message = "Bundle.entry is not a list"
    else:
        message = ""
    if message:
        if top:
            raise InputError(message)
        problems.append(Problem(label, message))
        return
    prefix = f"{where} " if where else ""
    for i, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            full_url = entry.get("fullUrl")
            yield resource, (full_url if isinstance(full_url, str) else None)
            continue
        if not isinstance(entry, dict):
            why = "is not a Bundle entry"
        elif resource is None:
            why = "has no resource"
        else:
            why = "is not a FHIR resource"
        problems.append(Problem(f"{prefix}entry {i}", why))


class BigNumber(str):
    """A JSON integer of more digits than Python converts (4,300): kept as its text, since
    no FHIR element the engine reads is such a number and printing it must not fail."""


def _number(text: str) -> int | BigNumber:
    return int(text) if len(text) <= 4000 else BigNumber(text)


_SAFE = json.JSONDecoder(parse_int=_number)
_SPACE = re.compile(r"[ \t\n\r]*")
_SCALAR_RUN = re.compile(  # up to 1,000 scalar items with their commas, matched in C
    r"(?:[ \t\n\r]*(?:-?[0-9][0-9.eE+-]*|true|false|null)[ \t\n\r]*,){1,1000}")


def _loads(text: str | bytes) -> Any:
    """json.loads, except that an integer too long to convert does not fail the input."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        if "digits" not in str(exc):
            raise
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig")
    return _SAFE.decode(text)


def _loads_fast(line: bytes) -> Any:
    """One NDJSON line (or a whole document without msgspec): orjson when installed, else
    (or for what orjson refuses: integers beyond 64 bits, lone surrogates, a BOM or UTF-16,
    errors to report as json words them) `_loads`, which reads the same values."""
    if orjson is not None:
        try:
            return orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
    return _loads(line)


def _loads_whole(text: str | bytes | mmap.mmap) -> Any:
    """A whole document: msgspec when installed, else `_loads_fast`. What msgspec refuses
    (integers beyond 64 bits, lone surrogates, NaN, a BOM or UTF-16, errors to report as
    json words them) goes to `_loads_fast`, which reads the same values as json.

    msgspec builds the Python objects straight from the bytes; orjson first builds its own
    document tree. On bench/evaluate.py's 20k Bundle (87 MB, collector paused) that is 0.45
    CPU s and 566 MB against orjson's 0.54 s and 752 MB (json.load: 0.64 s, 628 MB), and
    fewer pages touched is also less system time (2026-12-07)."""
    if msgspec is not None:
        try:
            return msgspec.json.decode(text)
        except (msgspec.MsgspecError, RecursionError):
            pass
    return _loads_fast(text if isinstance(text, str | bytes) else bytes(text))


def _array(text: str) -> list:
    """A top-level JSON array read item by item: objects are built, runs of scalars are only
    counted (`Skipped`), and reading stops once EARLY_STOP items hold no object, so an array of
    millions of numbers costs neither time nor memory. JSONDecodeError as json gives it."""
    items: list = []
    pos = _SPACE.match(text, 1).end()
    if text.startswith("]", pos):
        pos += 1
    else:
        index = 0
        objects = 0
        while True:
            run = _SCALAR_RUN.match(text, pos)
            if run is not None:
                count = text.count(",", pos, run.end())
                items.append(Skipped(index, count))
                index += count
                pos = run.end()
                if not objects and index >= EARLY_STOP:
                    return items
            value, pos = _SAFE.raw_decode(text, _SPACE.match(text, pos).end())
            if isinstance(value, dict):
                items.append(value)
                objects += 1
            else:
                items.append(Skipped(index, 1))
            index += 1
            if not objects and index >= EARLY_STOP:
                return items
            pos = _SPACE.match(text, pos).end()
            if text.startswith(",", pos):
                pos += 1
                continue
            if text.startswith("]", pos):
                pos += 1
                break
            raise json.JSONDecodeError("Expecting ',' delimiter", text, pos)
    if _SPACE.match(text, pos).end() != len(text):
        raise json.JSONDecodeError("Extra data", text, pos)
    return items


def _starts_an_array(text: str | bytes) -> bool:
    """The first character that is not white space is `[` (UTF-16/32 input: json decides)."""
    for char in text[:4096]:
        if char in (" ", "\t", "\n", "\r", 32, 9, 10, 13):
            continue
        return char in ("[", 91)
    return False


def parse_text(text: str | bytes | mmap.mmap) -> Any:
    """JSON, or NDJSON (one resource per line); InputError, one line, when it is neither.

    Bytes are decoded as `json` does (UTF-8, -16 or -32, with or without a BOM). NDJSON is
    recognised by its first line being a JSON object, so a broken JSON document is reported
    as broken JSON and a broken NDJSON line by its number. A top-level array is read item by
    item (`_array`); an integer too long for Python is kept as text (`BigNumber`). A file
    mapped in memory (`commands.evaluate.read_input`) is parsed in place when it is a whole
    document and copied to bytes only for the slower paths."""
    if isinstance(text, str):
        text = text.removeprefix("\ufeff")
    try:
        if _starts_an_array(text):
            if not isinstance(text, str):
                text = bytes(text)
                text = text.decode(json.detect_encoding(text)).removeprefix("\ufeff")
            return _array(text.lstrip())
        return _loads_whole(text)
    except json.JSONDecodeError as exc:
        whole = f"the input is not JSON ({exc.msg} at line {exc.lineno})"
    except UnicodeDecodeError:
        raise InputError("the input is not UTF-8 text, expected FHIR JSON") from None
    except RecursionError:
        raise InputError("the input is not JSON (nested too deeply)") from None
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InputError("the input is not UTF-8 text, expected FHIR JSON") from None
    lines = [(number, line) for number, line in enumerate(text.splitlines(), 1)
             if line.strip()]
    if len(lines) < 2:
        raise InputError(whole)
    items: list[dict] = []
    for number, line in lines:
        try:
            item = _loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
            raise InputError(f"NDJSON line {number} is not JSON ({detail})" if items
                             else whole) from None
        if not isinstance(item, dict):
            raise InputError(f"NDJSON line {number} is not a FHIR resource" if items
                             else whole)
        items.append(item)
    return items


# --------------------------------------------------------------------------------------------
# The elements `_Reader` reads, as types the parser can decode into (`parse_for_reading`)
# --------------------------------------------------------------------------------------------
# One list beside the reader that it describes: every element `_Reader` reads, at the place it
# reads it. msgspec decodes a Bundle against these straight from the bytes and leaves out every
# other element (displays, attachments, an AuditEvent's source, extensions), so the parsed input
# is smaller and quicker to build. They are the shapes FHIR R4 gives these elements in every
# resource; leaves stay `Any`, so `_Reader` still judges every value as it does on a full parse.
# An element holding another shape (a string where an object belongs, a null) fails the
# decode, and the input is then parsed whole (`parse_text`): the slim parse only ever drops
# what `_Reader` does not read. A read added to `_Reader` belongs here too; the test that
# both parses give the same Dataset (tests/unit/test_read_elements.py) is the guard.


_E = TypeVar("_E")
# A repeating element, or one value where FHIR repeats it: `_list` reads either
_Repeated = list[_E] | _E


class _Coding(TypedDict, total=False):
    """A Coding as `_codings` reads it."""

    system: Any
    code: Any


class _Coded(TypedDict, total=False):
    """A Coding or a CodeableConcept: `_codings` and `_concept_codings` read either."""

    system: Any
    code: Any
    coding: _Repeated[_Coding]


class _Ref(TypedDict, total=False):
    """A Reference (or a party given by identifier) as `_References.of`/`who` and `_party`
    read it."""

    reference: Any
    identifier: Any


class _Identifier(TypedDict, total=False):
    system: Any
    value: Any


class _Meta(TypedDict, total=False):
    security: _Repeated[_Coding]
    tag: _Repeated[_Coding]
    lastUpdated: Any


class _Period(TypedDict, total=False):
    start: Any
    end: Any


class _Present(TypedDict, total=False):
    """An element read only for being there (`is not None`): its content is left out."""


class _Agent(TypedDict, total=False):
    who: _Ref
    type: _Repeated[_Coded]


class _AuditEntity(TypedDict, total=False):
    what: _Ref
    securityLabel: _Repeated[_Coding]


class _Payload(TypedDict, total=False):
    contentReference: _Ref
    contentAttachment: _Present
    contentString: Any


class _Signature(TypedDict, total=False):
    when: Any


class _ProvisionData(TypedDict, total=False):
    meaning: Any
    reference: _Ref


class _ProvisionActor(TypedDict, total=False):
    role: _Repeated[_Coded]
    reference: _Ref


_Provision = TypedDict("_Provision", {  # "class" is a keyword: the functional form
    "type": Any,
    "period": _Period,
    "data": "_Repeated[_ProvisionData]",
    "provision": "_Repeated[_Provision]",
    "actor": "_Repeated[_ProvisionActor]",
    "action": "_Repeated[_Coded]",
    "purpose": "_Repeated[_Coding]",
    "securityLabel": "_Repeated[_Coding]",
    "class": "_Repeated[_Coding]",
    "code": "_Repeated[_Coded]",
    "dataPeriod": _Present,
}, total=False)


class _Resource(TypedDict, total=False):
    """Every element `_Reader` reads of a resource of any type (indexing, `describe`), then
    of the types it reads one by one."""

    resourceType: Any
    id: Any
    identifier: _Repeated[_Identifier]
    meta: _Meta
    type: str | _Repeated[_Coded]  # a Bundle's, a Coding, CodeableConcept(s)
    code: str | _Repeated[_Coded]
    securityLabel: _Repeated[_Coded]
    status: Any
    text: Any
    # Provenance
    signature: _Repeated[_Signature]
    target: _Repeated[_Ref]
    # Patient, RelatedPerson
    birthDate: Any
    gender: Any
    name: Any
    patient: _Repeated[_Ref]  # one Reference in R4; a list reads as none, as before
    relationship: Any
    # DocumentReference
    context: Any
    docStatus: Any
    date: Any
    # Communication
    category: Any
    about: _Repeated[_Ref]
    recipient: _Repeated[_Ref]
    statusReason: Any
    sent: Any
    subject: _Repeated[_Ref]  # Contract.subject is a list
    sender: _Repeated[_Ref]
    reasonCode: Any
    payload: _Repeated[_Payload]
    basedOn: _Repeated[_Ref]
    # Consent
    dateTime: Any
    sourceAttachment: _Present
    sourceReference: _Present
    provision: _Provision
    scope: Any
    policyRule: Any
    policy: Any
    performer: _Repeated[_Ref]
    # AuditEvent
    subtype: _Repeated[_Coded]
    outcome: Any
    period: _Period
    recorded: Any
    agent: _Repeated[_Agent]
    entity: _Repeated[_AuditEntity]
    purposeOfEvent: _Repeated[_Coded]


class _Entry(TypedDict, total=False):
    fullUrl: Any
    resource: _Resource


class _Bundle(TypedDict, total=False):
    """What `_bundle_items` reads of a Bundle."""

    resourceType: Any
    id: Any
    type: Any
    entry: list[_Entry]


_READ_BUNDLE = msgspec.json.Decoder(_Bundle) if msgspec is not None else None


def parse_for_reading(text: bytes | mmap.mmap) -> Any:
    """`parse_text` for input read only by `normalize` (`consent-gap evaluate`): a Bundle is
    decoded with only the elements `_Reader` reads (see above). On bench/evaluate.py's 20k
    Bundle the parse takes about a fifth less CPU and 120 MB less memory, and normalize reads
    the smaller dicts faster. Anything else (an array, NDJSON, a shape the types do not take,
    what msgspec refuses) is `parse_text`, so the result and every error are the same."""
    if _READ_BUNDLE is not None and not _starts_an_array(text):
        try:
            return _READ_BUNDLE.decode(text)
        except (msgspec.MsgspecError, RecursionError):
            pass
    return parse_text(text)


class _Reader:
    """One pass over the resources: index, then read each kind into domain objects."""

    def __init__(self, rules: Rules, bases: Iterable[str] = ()) -> None:
        self.rules = rules
        self.refs = _References(bases)
        self.index: dict[str, dict] = {}
        self.by_type: dict[str, dict[str, dict]] = {}  # a resource listed twice counts once
        self.problems = Problems()
        self._entity_cache: dict[str, tuple[frozenset, frozenset, frozenset]] = {}
        self._instruments: dict[str, tuple[list[str] | None, datetime | None]] = {}
        self._instants: dict[str, datetime] = {}
        self._classes: dict[str, frozenset[Coding]] = {}  # `describe`: {(type system, type)}
        # `agents`: an agent's `who` given by reference alone, by its text (reset by `add`)
        self._who: dict[str, tuple[tuple[str | None, frozenset[str], str | None],
                                   str | None]] = {}
        self.counted = rules.sensitivity.counted_systems
        # `_instrument`: the legal-instrument type codings, to leave any other type at once
        self._instrument_codings = frozenset((rules.instruments.system, code)
                                             for code in rules.instruments.codes)
        self.own_tag = rules.disclosures.own_tag

    # ---- indexing -------------------------------------------------------------------------

    def add(self, items: Iterable[tuple[dict, str | None]]) -> None:
        """Index the resources by key and type, and learn their fullUrls (1.1 References).

        A fullUrl that is the base found last + `Type/id` gets no alias: `_References` reads
        it as `Type/id` through `bases` (a plain id: no "/", no "_history"), so a Bundle of
        71,000 such entries does not build a dict of 71,000 URLs (0.04 s at 20k); it is told
        by one comparison with `base + key` (five prefix, suffix and length tests before: the
        indexing 0.115 -> 0.101 CPU s at 20k). A fullUrl given twice is named by the last entry
        either way."""
        alias = self.refs.alias
        bases = self.refs.bases
        index = self.index
        self._who.clear()  # what a reference names may change with the resources added
        by_type = self.by_type
        last_kind, last_type = None, {}
        base = "\0"  # the last base found: most fullUrls of a Bundle share one
        for position, (resource, full_url) in enumerate(items):
            kind = resource["resourceType"]
            rid = resource.get("id")
            if rid.__class__ is str and rid:
                key = kind + "/" + rid
                if full_url and full_url != key:
                    if (full_url == base + key and kind and "/" not in rid
                            and "/" not in kind and "/_history/" not in full_url):
                        if alias and full_url in alias:  # given before for another resource
                            alias[full_url] = key
                    else:
                        alias[full_url] = key
                        if (full_url.startswith(("http://", "https://"))
                                and full_url.endswith("/" + key)):
                            found = full_url[: -len(key)]
                            bases.add(found[:-1].rstrip("/"))
                            if not found.endswith("//"):  # else `bases` holds it trimmed
                                base = found
                if kind in PARTY_TYPES and "identifier" in resource:
                    self.refs.add_identifiers(key, filter(None, map(
                        _identifier, _list(resource.get("identifier")))))
            elif full_url:
                key = full_url
            else:
                key = f"{kind}/#{position}"
            index[key] = resource
            if kind != last_kind:
                last_kind = kind
                last_type = by_type.setdefault(kind, {})
            last_type[key] = resource

    def problem(self, resource: str, message: str) -> None:
        self.problems.append(Problem(resource, message))

    def instant(self, value: Any, where: str, part: str = "") -> datetime | None:
        """`parse_instant` of a value that may be absent (None), read once per text per run:
        a chart repeats its dates (a Consent's dateTime, its period, its signature). `where`
        + `part` names the element in a Problem (joined only when one is raised)."""
        if value is None:
            return None
        if value.__class__ is str:
            found = self._instants.get(value)
            if found is None:
                found = self._instants[value] = parse_instant(value, where + part)
            return found
        return parse_instant(value, where + part)

    def read_all(self, kind: str, read: Callable[[str, dict], _T | None]) -> list[_T]:
        """`read` applied to each resource of `kind`; None results are left out.

        This is the one place where a resource that cannot be read becomes a Problem naming
        it (its own message for a bad value, else 'is not a readable <kind>' for a shape that
        is not FHIR) while every other resource is still read."""
        out: list[_T] = []
        found = self.by_type.get(kind)
        for key, resource in found.items() if found else ():
            try:
                value = read(key, resource)
            except Unreadable as exc:
                self.problem(key, str(exc))
            except (TypeError, AttributeError, KeyError, ValueError):
                self.problem(key, f"is not a readable {kind}")
            else:
                if value is not None:
                    out.append(value)
        return out

    def tagged(self, resource: dict) -> bool:
        """Written by consent-gap itself (never documentation or a notice, 1.4)."""
        return self.own_tag in _codings(_dict(resource.get("meta")).get("tag"))

    # ---- Provenance -> signature times ------------------------------------------------------

    def signatures(self) -> dict[str, datetime | None]:
        """Consent reference -> earliest signature `when` (None when signed without a time)."""
        signed: dict[str, datetime | None] = {}
        for when, targets in self.read_all("Provenance", self.signature):
            for ref in targets:
                if ref not in signed:
                    signed[ref] = when
                elif when is not None:
                    earlier = signed[ref]
                    signed[ref] = when if earlier is None else min(earlier, when)
        return signed

    def signature(self, _key: str, resource: dict) -> tuple[datetime | None, list[str]] | None:
        """(earliest signature time, target references) of a Provenance with a signature."""
        sigs = [s for s in _list(resource.get("signature")) if isinstance(s, dict)]
        if not sigs:
            return None
        times = [self.instant(s["when"], "signature.when") for s in sigs
                 if s.get("when") is not None]
        targets = [ref for ref in map(self.refs.of, _list(resource.get("target"))) if ref]
        return (min(times) if times else None), targets

    # ---- Patient, RelatedPerson -------------------------------------------------------------

    def person(self, key: str, resource: dict) -> Person:
        birth = resource.get("birthDate")
        gender = resource.get("gender")
        return Person(
            reference=key,
            birth_date=None if birth is None else parse_instant(birth, "birthDate").date(),
            identifiers=frozenset(filter(None, map(_identifier,
                                                   _list(resource.get("identifier"))))),
            name=_human_name(resource.get("name")),
            gender=gender if isinstance(gender, str) else None,
        )

    def representative(self, key: str, resource: dict) -> Representative:
        return Representative(
            reference=key,
            patient=self.refs.of(resource.get("patient")),
            relationships=frozenset(_concept_codings(resource.get("relationship"))),
        )

    # ---- documentation and notices (1.4) ----------------------------------------------------

    def documents(self, _key: str, resource: dict) -> list[str] | None:
        """The references in `context.related` of a DocumentReference that documents them.

        One without `context` documents nothing and is left at once: most are the data
        disclosed, read for every DocumentReference of the data set."""
        context = resource.get("context")
        if context is None:
            return None
        codes = self.rules.disclosures
        status = resource.get("status")
        doc_status = resource.get("docStatus")
        if status.__class__ is not str or status not in codes.documentation_status:
            return None
        if doc_status is not None and (doc_status.__class__ is not str
                                       or doc_status not in codes.documentation_doc_status):
            return None
        if self.tagged(resource):
            return None
        related = _list(_dict(context).get("related"))
        return [ref for ref in map(self.refs.of, related) if ref]

    def communication(self, key: str, resource: dict
                      ) -> Disclosure | tuple[list[str], Notice] | None:
        """A Communication is a disclosure sent out (1.1), a client notice (1.4), or neither.

        One reader for both, so a Communication that cannot be read is one Problem, and the
        two meanings cannot overlap: a notice is about a disclosure, a disclosure is not."""
        if self.is_sent_disclosure(resource):
            return self.sent_disclosure(key, resource)
        return self.notice(key, resource)

    def about(self, resource: dict) -> list[str]:
        return [ref for ref in map(self.refs.of, _list(resource.get("about"))) if ref]

    def notice(self, key: str, resource: dict) -> tuple[list[str], Notice] | None:
        """(the disclosures it is about, the notice) of a Communication not written by us."""
        if self.tagged(resource):
            return None
        about = self.about(resource)
        if not about:
            return None
        status = resource.get("status")
        return about, Notice(
            reference=key,
            recipients=tuple(r for r in map(self.refs.who, _list(resource.get("recipient")))
                             if r),
            status=status if isinstance(status, str) else None,
            has_status_reason=bool(resource.get("statusReason")),
        )

    # ---- Consent -----------------------------------------------------------------------------

    def consent(self, key: str, resource: dict,
                signatures: dict[str, datetime | None]) -> Authorization:
        issued = self.instant(resource.get("dateTime"), "dateTime")
        meta = _dict(resource.get("meta"))
        last_updated = self.instant(meta.get("lastUpdated"), "meta.lastUpdated")
        has_signature = key in signatures
        signed = (has_signature or resource.get("sourceAttachment") is not None
                  or resource.get("sourceReference") is not None)
        signed_at = signatures.get(key) if has_signature else None
        if signed_at is None:
            signed_at = issued
        raw = resource.get("provision")
        provision = None
        if isinstance(raw, dict):
            provision = self.provision(raw, None, None, "provision", root=True)
        elif raw is not None:
            raise Unreadable("provision is not an object")
        status = resource.get("status")
        return Authorization.of(
            reference=key,
            patient=self.refs.of(resource.get("patient")),
            status=status if isinstance(status, str) else None,
            scopes=_set(_concept_codings(resource.get("scope"))),
            categories=_set(_concept_codings(resource.get("category"))),
            policy_rules=_set(_concept_codings(resource.get("policyRule"))),
            policy_uris=tuple([p["uri"] for p in _list(resource.get("policy"))
                               if isinstance(p, dict) and isinstance(p.get("uri"), str)]),
            signed=signed,
            signed_at=signed_at,
            last_updated=last_updated,
            performers=tuple([r for r in map(self.refs.who, _list(resource.get("performer")))
                              if r]),
            provision=provision,
            narrative=div if isinstance(div := _dict(resource.get("text")).get("div"), str)
            else None,
        )

    def provision(self, node: dict, start: datetime | None, end: datetime | None, where: str,
                  *, root: bool) -> Provision:
        """A provision node; a node without a period inherits its parent's (`start`, `end`).

        The root is a permit when its type is absent; a nested node without a known type is
        neither a permit nor a deny (1.2)."""
        get = node.get
        kind = get("type")
        if kind is None and root:
            kind = "permit"
        period = get("period")
        if isinstance(period, dict):
            start = self.instant(period.get("start"), where, ".period.start")
            end = self.instant(period.get("end"), where, ".period.end")
        raw = get("data")
        data = () if raw is None else tuple([
            (d.get("meaning") if isinstance(d.get("meaning"), str) else None,
             self.refs.of(d.get("reference")))
            for d in _list(raw) if isinstance(d, dict)
        ])
        raw = get("provision")
        children = () if raw is None else tuple([
            self.provision(child, start, end, f"{where}.provision[{i}]", root=False)
            for i, child in enumerate(_list(raw)) if isinstance(child, dict)
        ])
        raw = get("actor")
        actors = () if raw is None else tuple([self.actor(a) for a in _list(raw)
                                               if isinstance(a, dict)])
        raw = get("action")
        actions = () if raw is None else tuple([frozenset(_concept_codings(a))
                                                for a in _list(raw)])
        return Provision.of(
            type=kind if kind in ("permit", "deny") else "unknown",
            start=start,
            end=end,
            actors=actors,
            # an absent element is the shared empty set at once, no list built: most nodes
            # have none of these but `purpose` (0.2 us each of a Consent's ~20 us)
            purposes=_NOTHING if (raw := get("purpose")) is None else _set(_codings(raw)),
            labels=_NOTHING if (raw := get("securityLabel")) is None else _set(_codings(raw)),
            classes=_NOTHING if (raw := get("class")) is None else _set(_codings(raw)),
            codes=_NOTHING if (raw := get("code")) is None else _set(_concept_codings(raw)),
            data=data,
            has_data_period=get("dataPeriod") is not None,
            actions=actions,
            children=children,
        )

    def actor(self, actor: dict) -> Actor:
        """A provision actor: its roles, and whom it names by reference and/or identifier."""
        reference = actor.get("reference")
        return Actor.of(
            roles=_set(_concept_codings(actor.get("role"))),
            reference=self.refs.who(reference),
            identifier=_identifier(_dict(reference).get("identifier")),
        )

    # ---- AuditEvent --------------------------------------------------------------------------

    def disclosure(self, key: str, resource: dict) -> Disclosure | None:
        """A BALP PrivacyDisclosure AuditEvent read as in 1.1; None for any other AuditEvent."""
        if not self.is_disclosure(resource):
            return None
        occurred = self.occurred(resource)
        (recipient, identifiers, shown), notify = self.agents(resource)
        patient, entities, instruments, instrument_refs = self.entities(resource, occurred)
        system = self.rules.purposes.system
        purposes = [code for sys, code in _concept_codings(resource.get("purposeOfEvent"))
                    if sys == system]
        return Disclosure.of(
            reference=key,
            occurred=occurred,
            patient=patient,
            recipient=recipient,
            recipient_identifiers=identifiers,
            recipient_shown=shown,
            # each once, in order; one purpose (most) needs no dict to say so
            purposes=tuple(dict.fromkeys(purposes)) if len(purposes) > 1 else tuple(purposes),
            instruments=frozenset(instruments) if instruments else _NOTHING,
            instrument_refs=tuple(instrument_refs),
            entities=tuple(entities),
            notify=notify,
            identity=_identity(resource),
        )

    def is_disclosure(self, resource: dict) -> bool:
        codes = self.rules.disclosures
        if not _has_coding(resource.get("type"), codes.type):
            return False
        if not _has_coding(resource.get("subtype"), codes.subtype):
            return False
        outcome = resource.get("outcome")
        return outcome is None or (isinstance(outcome, str)
                                   and outcome in codes.successful_outcomes)

    def occurred(self, resource: dict) -> datetime:
        """`period.start`, else `recorded`."""
        start = _dict(resource.get("period")).get("start")
        if start is not None:
            return self.instant(start, "period.start")
        if resource.get("recorded") is not None:
            return self.instant(resource["recorded"], "recorded")
        raise Unreadable("has neither period.start nor recorded")

    def agents(self, resource: dict
               ) -> tuple[tuple[str | None, frozenset[str], str | None], tuple[str, ...]]:
        """(the recipient as `_party` reads it, people to notify) of an AuditEvent.

        The recipient is the first Destination Role agent that names someone. A `who` given
        by reference alone is read once per reference text (`_who`): a practice's agents
        repeat across its disclosures (254 distinct in 2,032 agents of bench's 1k Bundle)."""
        kinds = self.rules.disclosures.recipient_agent_type
        read = self._who
        recipient: tuple[str | None, frozenset[str], str | None] = _NO_PARTY
        notify: list[str] = []
        for agent in _list(resource.get("agent")):
            if not isinstance(agent, dict):
                continue
            who = agent.get("who")
            text = who.get("reference") if who.__class__ is dict else None
            if text.__class__ is str and "identifier" not in who:
                found = read.get(text)
                if found is None:
                    found = read[text] = self._read_who(who)
            else:
                found = self._read_who(who)
            party, notified = found
            if recipient[2] is None and _has_concept(agent.get("type"), kinds):
                recipient = party
            if notified is not None:
                notify.append(notified)
        return recipient, (tuple(dict.fromkeys(notify)) if len(notify) > 1 else tuple(notify))

    def _read_who(self, who: Any
                  ) -> tuple[tuple[str | None, frozenset[str], str | None], str | None]:
        """(`_party` of an agent's `who`, its reference when it is someone to notify)."""
        party = _party(self.refs, who)
        ref = self.refs.of(who)
        notified = ref is not None and ref.partition("/")[0] in self.rules.disclosures.notify_types
        return party, ref if notified else None

    def entities(self, resource: dict, occurred: datetime
                 ) -> tuple[str | None, list[Entity], set[str], list[str]]:
        """(patient, data disclosed, legal-instrument codes, instrument references)."""
        patient = None
        entities: list[Entity] = []
        instruments: set[str] = set()
        instrument_refs: list[str] = []
        of = self.refs.of
        read = self._instruments  # `instrument`, inlined: this runs for every entity
        for entity in _list(resource.get("entity")):
            if not isinstance(entity, dict):
                continue
            ref = of(entity.get("what"))
            if ref is None:
                entities.append(self.entity(ref, entity))
                continue
            if patient is None and ref.startswith("Patient/"):
                patient = ref
                continue
            found = read.get(ref)
            if found is None:
                found = read[ref] = self._instrument(ref)
            codes, dated = found
            if dated is not None and dated <= occurred:
                instruments.update(codes)
                instrument_refs.append(ref)
            else:
                entities.append(self.entity(ref, entity))
        return patient, entities, instruments, instrument_refs

    def instrument(self, ref: str, occurred: datetime) -> list[str] | None:
        """Legal-instrument codes of a dated DocumentReference not after the disclosure."""
        found = self._instruments.get(ref)
        if found is None:
            found = self._instruments[ref] = self._instrument(ref)
        codes, dated = found
        return codes if dated is not None and dated <= occurred else None

    def _instrument(self, ref: str) -> tuple[list[str] | None, datetime | None]:
        """(legal-instrument codes, date) of a DocumentReference, read once per run."""
        if not ref.startswith("DocumentReference/"):
            return None, None
        resource = self.index.get(ref)
        if resource is None:
            return None, None
        if resource.get("date") is None:
            return None, None
        classes = self.described(ref, resource)[1]  # the type's codings
        if classes.isdisjoint(self._instrument_codings):  # most: the data disclosed
            return None, None
        system = self.rules.instruments.system
        known = self.rules.instruments.codes
        codes = [code for sys, code in classes if sys == system and code in known]
        try:
            return codes, parse_instant(resource["date"], "date")
        except Unreadable as exc:
            self.problem(ref, str(exc))
            return None, None

    # ---- Communication sent out (1.1, "A disclosure may also be a Communication") -----------

    def is_sent_disclosure(self, resource: dict) -> bool:
        """Completed, on a disclosure channel, not about a disclosure (then it is a client
        notice), not written by consent-gap."""
        codes = self.rules.disclosures
        status = resource.get("status")
        if status.__class__ is not str or status not in codes.communication_status:
            return False
        if codes.channels.isdisjoint(_concept_codings(resource.get("category"))):
            return False
        if self.tagged(resource):
            return False
        return not any(type_of(ref) in codes.notice_about_types
                       for ref in self.about(resource))

    def sent_disclosure(self, key: str, resource: dict) -> Disclosure:
        """A disclosure Communication read field by field as 1.1's second table says.

        Without `sent`, or without exactly one recipient, it is a Problem and not a finding:
        the contract asks for one Communication per recipient, and a disclosure that cannot
        be placed in time cannot be checked against an authorization's period."""
        if resource.get("sent") is None:
            raise Unreadable("is a disclosure Communication without sent")
        occurred = parse_instant(resource["sent"], "sent")
        recipients = [r for r in _list(resource.get("recipient")) if isinstance(r, dict)]
        if len(recipients) != 1:
            count = "no recipient" if not recipients else f"{len(recipients)} recipients"
            raise Unreadable(f"is a disclosure Communication with {count}: "
                             "record one Communication per recipient")
        recipient, identifiers, shown = _party(self.refs, recipients[0])
        subject = self.refs.of(resource.get("subject"))
        sender = self.refs.of(resource.get("sender"))
        notify_types = self.rules.disclosures.notify_types
        system = self.rules.purposes.system
        purposes = [code for sys, code in _concept_codings(resource.get("reasonCode"))
                    if sys == system]
        entities, instruments, instrument_refs = self.payload(resource, occurred)
        return Disclosure.of(
            reference=key,
            occurred=occurred,
            patient=subject if subject is not None and subject.startswith("Patient/") else None,
            recipient=recipient,
            recipient_identifiers=identifiers,
            recipient_shown=shown,
            purposes=tuple(dict.fromkeys(purposes)),
            instruments=frozenset(instruments),
            instrument_refs=tuple(instrument_refs),
            entities=tuple(entities),
            notify=(sender,) if sender is not None
            and sender.split("/", 1)[0] in notify_types else (),
            identity=_identity(resource),
        )

    def payload(self, resource: dict, occurred: datetime
                ) -> tuple[list[Entity], set[str], list[str]]:
        """(data disclosed, legal-instrument codes, instrument references) of a Communication.

        A legal instrument is a `basedOn` or a `payload.contentReference`; every other
        contentReference is data. An attachment is data nothing in the record describes, so
        it is unresolved; a `contentString` alone (no data referenced or attached) means the
        data is unresolved; beside referenced data it is the covering letter."""
        instruments: set[str] = set()
        instrument_refs: list[str] = []
        entities: list[Entity] = []
        items = [p for p in _list(resource.get("payload")) if isinstance(p, dict)]
        based_on = [self.refs.of(b) for b in _list(resource.get("basedOn"))]
        content = [self.refs.of(p.get("contentReference")) for p in items]
        for ref in based_on:
            found = self.instrument(ref, occurred) if ref is not None else None
            if found and ref not in instrument_refs:
                instruments.update(found)
                instrument_refs.append(ref)
        for ref in content:
            found = self.instrument(ref, occurred) if ref is not None else None
            if found:
                instruments.update(found)
                if ref not in instrument_refs:
                    instrument_refs.append(ref)
            elif ref is not None:
                entities.append(self.entity(ref, {}))
        unknown = Entity(reference=None, resource_type=None, resolved=False)
        entities.extend(unknown for p in items if p.get("contentAttachment") is not None)
        if not entities and any(p.get("contentString") is not None for p in items):
            entities.append(unknown)
        return entities, instruments, instrument_refs

    def entity(self, ref: str | None, entity: dict) -> Entity:
        raw = entity.get("securityLabel")
        own = _NOTHING if raw is None else frozenset(
            c for c in _codings(raw) if c[0] in self.counted)
        resource = self.index.get(ref) if ref is not None else None
        if resource is not None:
            labels, classes, codes = self.described(ref, resource)
            return Entity.of(reference=ref, resource_type=resource["resourceType"],
                             resolved=True, labels=labels | own if own else labels,
                             classes=classes, codes=codes)
        kind = (ref.split("/", 1)[0] if ref is not None and "/" in ref
                and not is_foreign(ref) else None)
        classes = _NOTHING
        if kind is not None:
            classes = frozenset(((self.rules.consents.resource_type_system, kind),))
        return Entity.of(reference=ref, resource_type=kind, resolved=False, labels=own,
                         classes=classes, codes=_NOTHING)

    def described(self, ref: str, resource: dict) -> tuple[frozenset, frozenset, frozenset]:
        """`describe`, once per resource per run (an entity, a legal instrument)."""
        found = self._entity_cache.get(ref)
        if found is None:
            found = self._entity_cache[ref] = self.describe(resource)
        return found

    def describe(self, resource: dict) -> tuple[frozenset, frozenset, frozenset]:
        """(counted labels, classes, codes) of a resource in the data set.

        Every disclosed resource and every dated DocumentReference is described once: one
        filter pass over the label codings, and the resource type's class shared per type
        (a typical DocumentReference, warm: 2.4 -> 2.2 us)."""
        kind = resource["resourceType"]
        found: list[Coding] = []  # every label coding; only the counted ones are kept
        meta = resource.get("meta")
        if isinstance(meta, dict):
            _add_codings(meta.get("security"), found)
        type_codings = _concept_codings(resource.get("type"))
        classes = self._classes.get(kind)
        if classes is None:
            classes = self._classes[kind] = frozenset(
                ((self.rules.consents.resource_type_system, kind),))
        if kind == "DocumentReference":
            raw = resource.get("securityLabel")
            if raw is not None:
                found += _concept_codings(raw)
            if type_codings:
                classes = classes.union(type_codings)
        code = resource.get("code")
        codes = type_codings + _concept_codings(code) if code is not None else type_codings
        if found:
            counted = self.counted
            found = [c for c in found if c[0] in counted]
        return _set(found), classes, _set(codes)


def normalize(data: Any, rules: Rules, *, base: str | Iterable[str] | None = None) -> Dataset:
    """Read a Bundle (any type but history) or a list of resources into a Dataset.

    `base`: the FHIR base (or bases) being read, the scan's or the panel's server: an absolute
    reference on it names a resource of the data set (1.1 References). A Bundle's fullUrls
    add their own bases; any other server's URL never resolves."""
    bases = [base] if isinstance(base, str) else list(base or ())
    reader = _Reader(rules, bases)
    reader.add(_resources(data, reader.problems))
    signatures = reader.signatures()
    people = {p.reference: p for p in reader.read_all("Patient", reader.person)}
    representatives = {r.reference: r
                       for r in reader.read_all("RelatedPerson", reader.representative)}
    documented = frozenset(ref for refs in reader.read_all("DocumentReference", reader.documents)
                           for ref in refs)
    notices: dict[str, list[Notice]] = {}
    sent: list[Disclosure] = []
    for read in reader.read_all("Communication", reader.communication):
        if isinstance(read, Disclosure):
            sent.append(read)
            continue
        about, notice = read
        for ref in about:
            notices.setdefault(ref, []).append(notice)
    consents_by_patient: dict[str | None, list[Authorization]] = {}
    for consent in reader.read_all("Consent",
                                   lambda key, res: reader.consent(key, res, signatures)):
        consents_by_patient.setdefault(consent.patient, []).append(consent)
    disclosures = [*reader.read_all("AuditEvent", reader.disclosure), *sent]
    # Every patient the data names (the panel shows a chart's Consents even without disclosures).
    patients = {d.patient for d in disclosures} | set(consents_by_patient) | set(people)
    notices_by_event = {ref: tuple(found) for ref, found in notices.items()}
    charts = {patient: Chart(
        patient=people.get(patient) if patient else None,
        consents=tuple(consents_by_patient.get(patient, ())) if patient else (),
        representatives=representatives,
        documented=documented,
        notices=notices_by_event,
    ) for patient in patients}
    return Dataset(disclosures=disclosures, charts=charts, problems=reader.problems.listed())


# --------------------------------------------------------------------------------------------
# NDJSON, one patient at a time (two passes: index, then read each patient's lines)
# --------------------------------------------------------------------------------------------

_DIRECT = ("patient", "subject", "beneficiary")  # elements that name the resource's patient
_RAW_REFERENCE = re.compile(rb'"reference"\s*:\s*"([^"\\]*)"')
_RAW_VALUE = re.compile(rb'"value"\s*:\s*"([^"\\]*)"')


def _patients_named(resource: dict) -> set[str]:
    """The Patients a resource belongs to by its own elements (the patient compartment's
    usual links; an AuditEvent's Patient entities)."""
    found = set()
    if resource.get("resourceType") == "Patient" and isinstance(resource.get("id"), str):
        found.add(f"Patient/{resource['id']}")
    for name in _DIRECT:
        value = resource.get(name)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            ref = value["reference"].split("/_history/", 1)[0].rstrip("/").split("/")
            if len(ref) >= 2 and ref[-2] == "Patient":
                found.add(f"Patient/{ref[-1]}")
    if resource.get("resourceType") == "AuditEvent":
        for entity in _list(resource.get("entity")):
            what = _dict(entity).get("what") if isinstance(entity, dict) else None
            ref = _dict(what).get("reference")
            if isinstance(ref, str) and type_of(ref) == "Patient":
                found.add("Patient/" + ref.split("/_history/", 1)[0].rstrip("/").rsplit("/", 1)[-1])
    return found


def _links(resource: dict) -> tuple[list[str], list[str]]:
    """(what it points at that belongs with it, what it belongs with): a disclosure's data and
    instruments go with the disclosure's patient; a Provenance goes with what it targets, a
    notice or documentation with the disclosure it is about."""
    kind = resource.get("resourceType")
    forward: list = []
    backward: list = []
    if kind == "AuditEvent":
        forward = [_dict(_dict(e).get("what")).get("reference") for e in
                   _list(resource.get("entity"))]
    elif kind == "Communication":
        forward = [_dict(_dict(p).get("contentReference")).get("reference")
                   for p in _list(resource.get("payload"))]
        forward += [_dict(b).get("reference") for b in _list(resource.get("basedOn"))]
        backward = [_dict(a).get("reference") for a in _list(resource.get("about"))]
    elif kind == "Provenance":
        backward = [_dict(t).get("reference") for t in _list(resource.get("target"))]
    elif kind == "DocumentReference":
        backward = [_dict(r).get("reference") for r in
                    _list(_dict(resource.get("context")).get("related"))]

    def keys(refs: list) -> list[str]:
        out = []
        for ref in refs:
            if isinstance(ref, str) and ref:
                parts = ref.split("/_history/", 1)[0].rstrip("/").split("/")
                if len(parts) >= 2:
                    out.append(f"{parts[-2]}/{parts[-1]}")
        return out

    return keys(forward), keys(backward)


class NdjsonIndex:
    """Pass 1 over an NDJSON file: the lines (byte offsets) of each patient, and the lines that
    belong to no patient (the directory: Organizations, Practitioners...), by key.

    Everything that grows with the file (a row per line, per link and per patient's line) is
    kept in a temporary SQLite database on disk, so memory stays flat in the file size; only
    the directory (`shared`) and the patients' names stay in memory. `close` deletes it."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="consent-gap-ndjson-")
        self.db = sqlite3.connect(os.path.join(self._folder.name, "index.sqlite"))
        self.db.executescript(_INDEX_SCHEMA)
        self.patients: list[str] = []  # a patient's number is its place here; -1 is None
        self.shared: dict[str, int] = {}  # "Type/id" -> offset
        self.shared_identifiers: dict[str, set[str]] = {}  # value -> keys
        self._numbers: dict[str, int] = {}  # patient -> number

    def groups(self) -> list[str | None]:
        """Every patient with lines, in the order by_patient decides them (the records
        without a patient last)."""
        numbers = [n for (n,) in self.db.execute("SELECT DISTINCT patient FROM groups")]
        return sorted((None if n == -1 else self.patients[n] for n in numbers),
                      key=lambda p: (p is None, p or ""))

    def offsets(self, patient: str | None) -> list[int]:
        """A patient's lines, in file order, each once."""
        number = -1 if patient is None else self._numbers.get(patient)
        if number is None:
            return []
        return [o for (o,) in self.db.execute(
            "SELECT DISTINCT offset FROM groups WHERE patient = ? ORDER BY offset", (number,))]

    def close(self) -> None:
        self.db.close()
        self._folder.cleanup()


_INDEX_SCHEMA = """
PRAGMA journal_mode = OFF;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -4096;
CREATE TABLE lines (key TEXT NOT NULL, offset INTEGER NOT NULL, owner INTEGER NOT NULL);
CREATE TABLE forward (key TEXT NOT NULL, patient INTEGER NOT NULL);
CREATE TABLE backward (offset INTEGER NOT NULL, key TEXT NOT NULL);
CREATE TABLE groups (patient INTEGER NOT NULL, offset INTEGER NOT NULL);
"""

# Links resolved once every line is read (see index_ndjson)
_RESOLVE = """
CREATE INDEX lines_key ON lines (key, owner);
INSERT INTO groups
    SELECT DISTINCT lines.owner, backward.offset FROM backward JOIN lines USING (key)
    WHERE lines.owner >= 0;
INSERT INTO groups
    SELECT -1, backward.offset FROM backward
    LEFT JOIN lines ON lines.key = backward.key AND lines.owner >= 0
    GROUP BY backward.offset HAVING COUNT(lines.owner) = 0;
INSERT INTO groups
    SELECT forward.patient, (SELECT MAX(offset) FROM lines WHERE lines.key = forward.key)
    FROM forward
    WHERE EXISTS (SELECT 1 FROM lines WHERE lines.key = forward.key)
      AND NOT EXISTS (SELECT 1 FROM lines
                      WHERE lines.key = forward.key AND lines.owner = forward.patient);
CREATE INDEX groups_patient ON groups (patient, offset);
"""

_BATCH = 20_000  # rows held before they are written to the index


def index_ndjson(handle: Any) -> NdjsonIndex:
    """Read an NDJSON file (binary, seekable) once and say where each patient's resources
    are. A line that is not JSON or not a resource is an InputError, as `parse_text` says.
    The caller closes the index.

    Each line's key, offset and owners go to the index; so do the links a patient's resource
    makes to data (`_links` forward: a disclosure's data goes with its patient) and the links
    a resource without a patient makes to what it belongs with (backward: a Provenance, a
    notice, documentation); they are resolved in the database once every line is read."""
    index = NdjsonIndex()
    numbers = index._numbers
    patients = index.patients
    rows: dict[str, list[tuple]] = {"lines": [], "forward": [], "backward": [], "groups": []}
    db = index.db

    def flush() -> None:
        for table, found in rows.items():
            if found:
                marks = ", ".join("?" * len(found[0]))
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", found)  # noqa: S608
                found.clear()

    try:
        number = 0
        offset = handle.tell()
        pending = 0
        for line in iter(handle.readline, b""):
            number += 1
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                resource = _loads_fast(line)
            except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
                raise InputError(f"NDJSON line {number} is not JSON") from None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"),
                                                                str):
                raise InputError(f"NDJSON line {number} is not a FHIR resource")
            if resource["resourceType"] == "Bundle":
                raise NotPerPatient(f"NDJSON line {number} is a Bundle")
            rid = resource.get("id")
            key = f"{resource['resourceType']}/{rid}" if isinstance(rid, str) and rid else \
                f"{resource['resourceType']}/#{number}"
            named = _patients_named(resource)
            forward, backward = _links(resource)
            if named:
                for patient in named:
                    found = numbers.get(patient)
                    if found is None:
                        found = numbers[patient] = len(patients)
                        patients.append(patient)
                    rows["lines"].append((key, start, found))
                    rows["groups"].append((found, start))
                    rows["forward"].extend((target, found) for target in forward
                                           if target != patient)  # a Patient is its own
            else:
                rows["lines"].append((key, start, -1))
                if backward:
                    rows["backward"].extend((start, target) for target in backward)
                elif resource["resourceType"] not in PARTY_TYPES:  # a record, no patient
                    rows["groups"].append((-1, start))
                else:
                    index.shared[key] = start
                    for identifier in _list(resource.get("identifier")):
                        value = _dict(identifier).get("value")
                        if isinstance(value, str):
                            index.shared_identifiers.setdefault(value, set()).add(key)
            pending += 1
            if pending >= _BATCH:
                flush()
                pending = 0
        flush()
        db.executescript(_RESOLVE)
        for (key,) in db.execute("SELECT DISTINCT key FROM forward"):
            index.shared.pop(key, None)  # data sent in a disclosure: that patient's
    except BaseException:
        index.close()
        raise
    return index


def read_group(handle: Any, index: NdjsonIndex, patient: str | None) -> list[dict]:
    """One patient's resources (pass 2), with the directory resources they refer to by
    reference or by identifier value."""
    lines = []
    for start in index.offsets(patient):
        handle.seek(start)
        lines.append(handle.readline())
    wanted: set[str] = set()
    for line in lines:
        for match in _RAW_REFERENCE.finditer(line):
            parts = match.group(1).decode("utf-8", "replace").split("/_history/", 1)[0]
            parts_list = parts.rstrip("/").split("/")
            if len(parts_list) >= 2:
                wanted.add(f"{parts_list[-2]}/{parts_list[-1]}")
        if index.shared_identifiers:
            for match in _RAW_VALUE.finditer(line):
                wanted.update(index.shared_identifiers.get(
                    match.group(1).decode("utf-8", "replace"), ()))
    for key in sorted(wanted):
        start = index.shared.get(key)
        if start is not None:
            handle.seek(start)
            lines.append(handle.readline())
    return [_loads_fast(line) for line in lines]


# --------------------------------------------------------------------------------------------
# The accounting of disclosures (CONTRACT 8): names, addresses and titles, for display only.
# Read apart from `normalize` (only for the disclosures an accounting lists), so the engine's
# pass over every chart stays as lean as it is; the rules of 1.1 (which agent is the
# recipient, which entity is the patient or a legal instrument) are the `_Reader`'s own.
# --------------------------------------------------------------------------------------------

_US = frozenset({"US", "USA", "UNITED STATES", "UNITED STATES OF AMERICA"})


def _text(value: Any) -> str | None:
    return " ".join(value.split()) or None if isinstance(value, str) else None


def _concept_text(concept: Any) -> str | None:
    """A CodeableConcept's text, else its first coding's display."""
    for item in _list(concept):
        if not isinstance(item, dict):
            continue
        found = _text(item.get("text")) or next(
            (_text(c.get("display")) for c in _list(item.get("coding"))
             if isinstance(c, dict) and _text(c.get("display"))), None)
        if found:
            return found
    return None


def one_line_address(addresses: Any) -> str | None:
    """The first Address on one line: its text, else lines, city, "state postal code" and a
    country other than the US, comma-separated ("1 Main St, Alden, CA 95000")."""
    first = next((a for a in _list(addresses) if isinstance(a, dict)), None)
    if first is None:
        return None
    text = first.get("text")
    if isinstance(text, str) and text.strip():
        return ", ".join(" ".join(line.split()) for line in text.splitlines() if line.strip())
    country = _text(first.get("country"))
    parts = [*filter(None, map(_text, _list(first.get("line")))), _text(first.get("city")),
             " ".join(filter(None, (_text(first.get("state")), _text(first.get("postalCode"))))),
             country if country and country.upper() not in _US else None]
    return ", ".join(p for p in parts if p) or None


class _Releases(_Reader):
    """The accounting's reader: the `_Reader`'s index and 1.1 rules, display fields out."""

    def __init__(self, rules: Rules) -> None:
        super().__init__(rules)

    def party(self, ref: str | None, identifier: str | None = None,
              display: str | None = None) -> Party:
        """Who `ref` (else `identifier`) names: the resource's name and first address, else
        the reference's display, else the identifier's value."""
        if ref is None and identifier is not None:
            ref = self.identified(identifier)
        resource = self.index.get(ref) if ref is not None else None
        name = address = None
        if resource is not None:
            name, address = self.name_of(resource), self.address_of(resource)
        if name is None:
            name = display or (identifier.split("|", 1)[1] if identifier else None)
        return Party(reference=ref, name=name, address=address)

    def identified(self, identifier: str) -> str | None:
        """The party resource of the data set that carries `identifier` (CONTRACT 1.1; one
        carried by two resources names neither): the index `add` keeps."""
        return self.refs.by_identifier.get(identifier)

    def name_of(self, resource: dict) -> str | None:
        name = resource.get("name")
        if isinstance(name, str):
            return _text(name)
        if resource.get("resourceType") == "PractitionerRole":
            names = [self.name_of(found) if found is not None else _text(ref.get("display"))
                     for ref in (_dict(resource.get("practitioner")),
                                 _dict(resource.get("organization")))
                     for found in (self.index.get(self.refs.of(ref) or ""),)]
            return ", ".join(n for n in names if n) or None
        if resource.get("resourceType") == "Device":
            return next((_text(d.get("name")) for d in _list(resource.get("deviceName"))
                         if isinstance(d, dict) and _text(d.get("name"))), None)
        return _human_name(name)

    def address_of(self, resource: dict) -> str | None:
        if resource.get("resourceType") == "PractitionerRole":
            for ref in (resource.get("organization"), resource.get("practitioner")):
                found = self.index.get(self.refs.of(ref) or "")
                if found is not None and (address := self.address_of(found)):
                    return address
            return None
        return one_line_address(resource.get("address"))

    def item(self, ref: str | None, entity: dict) -> DataItem:
        """A disclosed entity: its resource's type and title when in the data set, else what
        the record says of it (an AuditEvent entity's name or description) and its labels."""
        read = self.entity(ref, entity)
        resource = self.index.get(ref) if ref is not None else None
        kind = title = None
        if resource is not None:
            rtype = resource.get("resourceType")
            if rtype in ("DocumentReference", "Composition"):
                kind = _concept_text(resource.get("type"))
            attachments = [_dict(c).get("attachment") for c in _list(resource.get("content"))]
            title = (_text(resource.get("title"))
                     or next((t for a in attachments if (t := _text(_dict(a).get("title")))),
                             None)
                     or _text(resource.get("description"))
                     or (None if kind else _concept_text(resource.get("code"))))
        title = title or _text(entity.get("name")) or _text(entity.get("description"))
        return DataItem(reference=ref, resource_type=read.resource_type, kind=kind,
                        title=title, labels=tuple(sorted(read.labels)), resolved=read.resolved)

    def audit_released(self, key: str, resource: dict) -> Released | None:
        """An AuditEvent disclosure (1.1): the first Destination agent naming someone, and
        every entity but the Patient and the legal instruments."""
        if not self.is_disclosure(resource):
            return None
        occurred = self.occurred(resource)
        kinds = self.rules.disclosures.recipient_agent_type
        recipient = Party(reference=None, name=None, address=None)
        for agent in _list(resource.get("agent")):
            who = _dict(_dict(agent).get("who"))
            if kinds.isdisjoint(_concept_codings(_dict(agent).get("type"))):
                continue
            ref, identifier = self.refs.of(who), _identifier(who.get("identifier"))
            if ref is not None or identifier is not None:
                recipient = self.party(ref, identifier, _text(who.get("display")))
                break
        items: list[DataItem] = []
        instruments: list[DataItem] = []
        patient_seen = False
        for entity in _list(resource.get("entity")):
            if not isinstance(entity, dict):
                continue
            ref = self.refs.of(entity.get("what"))
            if not patient_seen and ref is not None and ref.startswith("Patient/"):
                patient_seen = True
                continue
            if ref is not None and self.instrument(ref, occurred):
                instruments.append(self.item(ref, entity))
                continue
            items.append(self.item(ref, entity))
        return Released(recipient=recipient, data=tuple(items), instruments=tuple(instruments))

    def sent_released(self, key: str, resource: dict) -> Released | None:
        """A Communication disclosure (1.1): its one recipient and its payload."""
        if not self.is_sent_disclosure(resource):
            return None
        disclosure = self.sent_disclosure(key, resource)
        who = _dict(_list(resource.get("recipient"))[0])
        recipient = self.party(disclosure.recipient, _identifier(who.get("identifier")),
                               _text(who.get("display")))
        sent = set(disclosure.instrument_refs)
        items = [self.item(ref, {}) for p in _list(resource.get("payload"))
                 if (ref := self.refs.of(_dict(p).get("contentReference"))) and ref not in sent]
        for p in _list(resource.get("payload")):
            attachment = _dict(p).get("contentAttachment")
            if isinstance(attachment, dict):
                items.append(DataItem(reference=None, resource_type=None,
                                      title=_text(attachment.get("title"))))
        if not items and disclosure.entities:
            items.append(DataItem(reference=None, resource_type=None))
        return Released(recipient=recipient, data=tuple(items),
                        instruments=tuple(self.item(ref, {})
                                          for ref in disclosure.instrument_refs))


def read_released(data: Any, rules: Rules, wanted: Iterable[str] | None = None) -> Releases:
    """The display details of the disclosures in `data` (all, or the references `wanted`)
    and the name of every party resource it holds. Tolerant as `normalize`: what cannot be
    read is left out (`normalize` has already reported it)."""
    items, _problems = resources_of(data)
    reader = _Releases(rules)
    reader.add(items)
    only = None if wanted is None else set(wanted)
    released: dict[str, Released] = {}
    for kind, read in (("AuditEvent", reader.audit_released),
                       ("Communication", reader.sent_released)):
        for key, resource in reader.by_type.get(kind, {}).items():
            if only is not None and key not in only:
                continue
            try:
                found = read(key, resource)
            except (Unreadable, TypeError, AttributeError, KeyError, ValueError):
                continue
            if found is not None:
                released[key] = found
    parties = {key: reader.party(key) for kind in PARTY_TYPES
               for key in reader.by_type.get(kind, {})}
    return Releases(disclosures=released, parties=parties)


def written(data: Any, system: str) -> dict[str, Written]:
    """The resources of `data` that carry an identifier of `system` (what consent-gap wrote
    earlier), by the identifier's value: the panel shows a draft waiting for signature, the
    date an alert went, and links to each note, instead of offering to write them again."""
    items, _problems = resources_of(data)
    out: dict[str, Written] = {}
    for resource, _url in items:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if not isinstance(rtype, str) or not isinstance(rid, str):
            continue
        for ident in _list(resource.get("identifier")):
            value = _dict(ident).get("value")
            if _dict(ident).get("system") == system and isinstance(value, str):
                status = _text(resource.get("docStatus")) or _text(resource.get("status"))
                when = _text(resource.get("sent")) or _text(resource.get("date"))
                out[value] = Written(f"{rtype}/{rid}", value, status, when)
    return out
