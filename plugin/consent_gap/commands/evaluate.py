"""`consent-gap evaluate FILE`: decide every disclosure in a FHIR file, offline.

Exit codes: 0 evaluated (whatever was found); 1 with `--fail-on unauthorized` when such a
finding exists; 2 on unusable input, with one line on standard error and no traceback
(CONTRACT 2).
"""

from __future__ import annotations

import argparse
import heapq
import json
import mmap
import os
import re
import struct
import sys
from array import array
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

try:  # a faster writer of the same JSON, when installed (setup.cfg declares it)
    import orjson
except ImportError:  # pragma: no cover - the fallback is json
    orjson = None  # type: ignore[assignment]

from consent_gap.commands.base import EXIT_ERRORS, EXIT_OK, Command, UsageError

EPILOG = """\
examples:
  consent-gap evaluate chart.json --jurisdiction US-CA
  consent-gap evaluate export.ndjson --format text
  cat bundle.json | consent-gap evaluate - --fail-on unauthorized

FILE is a FHIR R4 Bundle (any type but history), a JSON array of resources, or NDJSON.
A resource that cannot be read is listed under "problems"; everything else is still decided.
Without --jurisdiction only the federal rules apply and the age of majority is 18.
exit status: 0 evaluated; 1 with --fail-on unauthorized and an unauthorized finding;
2 unusable input (missing file, not JSON, not FHIR, history Bundle, unknown jurisdiction).
"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="FHIR R4 Bundle, JSON array or NDJSON of "
                        "resources; - reads standard input")
    parser.add_argument("--jurisdiction", metavar="US-XX", help="ISO 3166-2 code of the state "
                        "whose duty to warn and age of majority apply (default: federal only)")
    parser.add_argument("--format", choices=("json", "text"), default="json",
                        help="json (default, CONTRACT section 2) or text (a table for people)")
    parser.add_argument("--pretty", action="store_true",
                        help="indent the JSON for people (default: compact, one line)")
    parser.add_argument("--fail-on", choices=("unauthorized",), dest="fail_on",
                        help="exit 1 when any finding is unauthorized")
    parser.add_argument("--mappings", metavar="DIR", help="another mappings folder "
                        "(default: $CONSENT_GAP_MAPPINGS, else the packaged tables)")


def _shown(name: str) -> str:
    """FILE as error messages name it."""
    return "standard input" if name == "-" else name


def read_input(name: str, *, normalized_only: bool = False) -> Any:
    """The parsed JSON (or NDJSON) of FILE or standard input; UsageError if unusable.

    `normalized_only`: the caller gives the data to `normalize` and nothing else (evaluate),
    so a Bundle is parsed with only the elements normalize reads (`parse_for_reading`)."""
    from consent_gap.normalize import InputError, parse_for_reading, parse_text

    shown = _shown(name)
    try:
        if name == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as handle:
                raw = _mapped(handle) or handle.read()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    try:
        if _NOT_BLANK.search(raw) is None:
            raise UsageError(f"{shown}: is empty, expected a FHIR Bundle")
        return parse_for_reading(raw) if normalized_only else parse_text(raw)
    except InputError as exc:
        raise UsageError(f"{shown}: {exc}") from None
    finally:
        if isinstance(raw, mmap.mmap):
            raw.close()


def _mapped(handle: Any) -> mmap.mmap | None:
    """A file mapped in memory, so the parser reads it straight from the page cache instead
    of a copy in the heap (on the 87 MB Bundle of bench/evaluate.py, 20,000 fewer page faults
    and no 87 MB copy); None where a file cannot be mapped (empty, a pipe or a device)."""
    try:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None


def run(args: argparse.Namespace) -> int:
    """Read, decide, print. The collector is paused from reading to printing (`gc_paused`:
    parsing a large file builds millions of objects it would rescan for nothing). Run as the
    console script, the process then ends at once: freeing every parsed object one by one
    would only cost time (about a tenth of a run) for memory the system takes back anyway."""
    from consent_gap.evaluate import gc_paused

    kept: list = []  # the input and the report, let go only after the exit decision
    with gc_paused():
        code = _run(args, kept)
        _exit_now(code)
        kept.clear()
    return code


def _write(*pieces: bytes) -> None:
    """Bytes to standard output, piece after piece (its buffer; a text stream a caller put
    there gets text: each piece is whole UTF-8, `_report_pieces` cuts between findings)."""
    stream = sys.stdout
    buffer = getattr(stream, "buffer", None)
    stream.flush()
    if buffer is not None:
        for piece in pieces:
            buffer.write(piece)
        buffer.flush()
    else:
        for piece in pieces:
            stream.write(piece.decode("utf-8"))
        stream.flush()


def _exit_now(code: int) -> None:
    """End the process without tearing down its objects, when it is the command itself (the
    console script or `python -m`); a caller in the same process (tests) gets the code back."""
    if os.path.basename(sys.argv[0] if sys.argv else "") not in _COMMAND_NAMES:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_COMMAND_NAMES = frozenset({"consent-gap", "__main__.py", "cli.py"})


_PIECE = 512  # findings per orjson call when the compact report is written in pieces


def _report_pieces(report: Any, pretty: bool) -> list[bytes]:
    """What `dump_report` gives, as pieces whose concatenation is byte for byte the same.

    The compact JSON, when orjson is installed, goes to orjson `_PIECE` findings at a time
    into the document around them (`Report.to_json` of the report without its findings,
    which gives the shape), so that neither a dict per finding for all of them nor one
    buffer grown to the whole output is made: 0.060 -> 0.045 CPU s for 20,000 findings,
    0.39 -> 0.29 s for 100,000. Anything orjson refuses (lone surrogates) is written whole
    by `dump_report`, before anything is written."""
    if orjson is None or pretty:
        return [dump_report(report, pretty=pretty)]
    findings = report.findings
    try:
        shell = orjson.dumps(replace(report, findings=[]).to_json(native=True))
        cut = shell.index(_NO_FINDINGS) + len(_NO_FINDINGS) - 1  # just inside the array
        pieces = [shell[:cut]]
        for start in range(0, len(findings), _PIECE):
            part = orjson.dumps([f.to_json(native=True)
                                 for f in findings[start:start + _PIECE]])
            pieces.append(part[1:-1] if not start else b"," + part[1:-1])
    except (TypeError, orjson.JSONEncodeError):
        return [dump_report(report, pretty=pretty)]
    pieces.append(shell[cut:] + b"\n")
    return pieces


# the empty findings array in the compact JSON (a string's own quotes are escaped, so
# nothing before it in the document can look like it)
_NO_FINDINGS = b'"findings":[]'


def dump_report(report: Any, *, pretty: bool = False) -> bytes:
    """CONTRACT section 2's JSON as UTF-8 bytes: compact unless `pretty`.

    orjson writes it several times faster than `json` when installed; text that is not
    valid Unicode (a lone surrogate read from an escaped id) is written as a JSON escape,
    which is what it was in the input."""
    if orjson is not None:
        try:  # tuples and enum members as the findings hold them: orjson writes them as is
            return orjson.dumps(report.to_json(native=True),
                                option=(orjson.OPT_INDENT_2 if pretty else 0)
                                | orjson.OPT_APPEND_NEWLINE)
        except (TypeError, orjson.JSONEncodeError):
            pass  # lone surrogates: json escapes them
    document = report.to_json()
    try:
        text = json.dumps(document, ensure_ascii=False, indent=2 if pretty else None,
                          separators=None if pretty else (",", ":"))
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(document, ensure_ascii=True, indent=2 if pretty else None,
                          separators=None if pretty else (",", ":"))
        return (text + "\n").encode("ascii")


def _run(args: argparse.Namespace, kept: list) -> int:
    from consent_gap.evaluate import evaluator
    from consent_gap.mappings import MappingsError, load_rules
    from consent_gap.normalize import InputError

    try:  # the arguments first: a typo should not wait for a large file to be read
        decide = evaluator(args.jurisdiction, rules=load_rules(args.mappings))
    except (MappingsError, InputError) as exc:
        raise UsageError(str(exc)) from None
    if args.format == "json" and _is_ndjson(args.file):
        streamed = _run_per_patient(args, decide)
        if streamed is not None:
            return streamed
    data = read_input(args.file, normalized_only=True)  # the evaluator is not `named`
    kept.append(data)
    try:
        report = decide(data)
    except InputError as exc:
        raise UsageError(f"{_shown(args.file)}: {exc}") from None
    kept.append(report)
    if args.format == "text":
        _write(render_text(report).encode("utf-8", "backslashreplace"))
    else:
        _write(*_report_pieces(report, args.pretty))
    if args.fail_on == "unauthorized" and any(
            f.decision == "unauthorized" for f in report.findings):
        return EXIT_ERRORS
    return EXIT_OK


def _is_ndjson(name: str) -> bool:
    """A file (not standard input) whose first non-blank line is a whole JSON object and that
    has another line: NDJSON, which `_run_per_patient` reads one patient at a time.

    The file is scanned in blocks (`_first_line_span`) and only that first line is read: a
    Bundle is often written on one line, and reading it line by line here held all of it
    before `read_input` read it again (0.23 CPU s, 43,000 page faults on the 87 MB Bundle of
    bench/evaluate.py at 20k disclosures)."""
    if name == "-":
        return False
    try:
        with open(name, "rb") as handle:
            span = _first_line_span(handle)
            if span is None:
                return False
            handle.seek(span[0])
            first = handle.read(span[1] - span[0])
    except OSError:
        return False  # read_input says why
    try:
        return isinstance(json.loads(first), dict)
    except ValueError:
        return False


_BLOCK = 1 << 20  # bytes scanned at a time by `_first_line_span`
_NOT_BLANK = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() keeps


def _first_line_span(handle: Any) -> tuple[int, int] | None:
    """(start, end) offsets of the first non-blank line (its newline included) when another
    non-blank line follows it, else None. Lines end at b"\n" and are blank as bytes.strip()
    says, as iterating over the file would split them; one block is held at a time."""
    buffer = bytearray(_BLOCK)
    at = 0  # the file offset of buffer[0]
    start = end = None
    line = 0  # where the line being scanned starts
    while count := handle.readinto(buffer):
        pos = 0
        if start is None:
            found = _NOT_BLANK.search(buffer, 0, count)
            pos = count if found is None else found.start()
            newline = buffer.rfind(b"\n", 0, pos)
            if newline >= 0:
                line = at + newline + 1
            if found is None:
                at += count
                continue
            start = line
        if end is None:
            newline = buffer.find(b"\n", pos, count)
            if newline < 0:
                at += count
                continue
            end = at + newline + 1
            pos = newline + 1
        if _NOT_BLANK.search(buffer, pos, count) is not None:
            return start, end
        at += count
    return None


def _run_per_patient(args: argparse.Namespace, decide: Any) -> int | None:
    """NDJSON decided per patient (`by_patient`): each patient's findings, in contract order
    (section 2: by occurred, then disclosure), are spooled to a temporary file as they are
    decided, then merged from the spool straight to standard output (`_merged`). Memory
    holds one patient and the place of each patient's run in the spool, never the findings
    or the report. None when the file must be read whole."""
    import tempfile

    from consent_gap.evaluate import NotPerPatient, by_patient
    from consent_gap.normalize import InputError

    runs = array("q")  # each patient's run of findings in the spool: start, count
    unauthorized = False
    problems: list = []
    ruleset = ""
    with open(args.file, "rb") as handle, tempfile.TemporaryFile() as spool:
        try:
            for report in by_patient(handle, decide):
                ruleset = report.ruleset
                problems.extend(report.problems)
                first = spool.tell()
                for finding in report.findings:
                    data = _dumps(finding.to_json(native=True), args.pretty, indent="    ")
                    key = _order_key(finding.occurred, finding.disclosure)
                    spool.write(_RECORD.pack(len(key), len(data)) + key + data)
                    unauthorized = unauthorized or finding.decision == "unauthorized"
                if report.findings:
                    runs.append(first)
                    runs.append(len(report.findings))
        except NotPerPatient:
            return None
        except InputError as exc:
            raise UsageError(f"{_shown(args.file)}: {exc}") from None
        spool.flush()
        _stream(ruleset, _merged(spool.fileno(), runs), problems, args.pretty)
    if args.fail_on == "unauthorized" and unauthorized:
        return EXIT_ERRORS
    return EXIT_OK


_RECORD = struct.Struct("<II")  # a spooled finding: its order key's length, its JSON's


def _order_key(occurred: str, disclosure: str) -> bytes:
    """Section 2's order as bytes: the instant in UTC, fixed width to the microsecond (so that
    a fraction of a second sorts as time does), then the disclosure."""
    moment = datetime.fromisoformat(occurred).astimezone(UTC)
    text = moment.isoformat(timespec="microseconds") + "\0" + disclosure
    return text.encode("utf-8", "surrogatepass")


def _run_of(fd: int, start: int, count: int) -> Iterator[tuple[bytes, int, int]]:
    """One patient's spooled findings in order: (order key, where its JSON is, its length)."""
    at = start
    for _ in range(count):
        head = os.pread(fd, _RECORD.size + 128, at)
        size, length = _RECORD.unpack_from(head)
        key = head[_RECORD.size:_RECORD.size + size]
        if len(key) < size:
            key = os.pread(fd, size, at + _RECORD.size)
        at += _RECORD.size + size
        yield key, at, length
        at += length


def _merged(fd: int, runs: array) -> Iterator[bytes]:
    """Every spooled finding's JSON in contract order: each patient's run is in order
    already, so a merge holds one finding per patient, not one per finding."""
    heads = [_run_of(fd, runs[i], runs[i + 1]) for i in range(0, len(runs), 2)]
    for _key, at, length in heapq.merge(*heads):
        yield os.pread(fd, length, at)


def _stream(ruleset: str, findings: Iterator[bytes], problems: list, pretty: bool) -> None:
    """The report of section 2 written piece by piece to standard output."""
    problem_items = [_dumps(p.to_json(), pretty, indent="    ") for p in problems]
    sys.stdout.flush()
    out = getattr(sys.stdout, "buffer", None)
    write = out.write if out is not None else (
        lambda data: sys.stdout.write(data.decode("utf-8")))
    if pretty:
        write(b'{\n  "ruleset": ' + json.dumps(ruleset).encode() + b',\n  "findings": [')
        sep, first = b",\n", b"\n"
        tail = b'\n  ],\n  "problems": [' + b",\n".join(problem_items) + b"\n  ]\n}\n"
    else:
        write(b'{"ruleset":' + json.dumps(ruleset).encode() + b',"findings":[')
        sep, first = b",", b""
        tail = b'],"problems":[' + b",".join(problem_items) + b"]}\n"
    for data in findings:
        write(first + data)
        first = sep
    write(tail)
    sys.stdout.flush()


def _dumps(document: dict, pretty: bool, indent: str = "") -> bytes:
    """One JSON value as bytes (orjson when installed; lone surrogates escaped by json)."""
    if orjson is not None:
        try:
            data = orjson.dumps(document, option=orjson.OPT_INDENT_2 if pretty else 0)
        except (TypeError, orjson.JSONEncodeError):
            data = json.dumps(document, indent=2 if pretty else None,
                              separators=None if pretty else (",", ":")).encode("ascii")
    else:
        data = json.dumps(document, indent=2 if pretty else None,
                          separators=None if pretty else (",", ":")).encode("ascii")
    if pretty and indent:
        data = b"\n".join(indent.encode() + line for line in data.split(b"\n"))
    return data


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def render_text(report: Any) -> str:
    """A table for a person at a terminal: one row per finding, then problems and a summary."""
    lines = _table(report) if report.findings else ["No disclosures found."]
    if report.problems:
        lines += ["", "Could not be read:"]
        lines.extend(f"  {p.resource}: {p.message}" for p in report.problems)
    lines += ["", _summary(report)]
    return "\n".join(lines) + "\n"


_HEADERS = ("occurred", "disclosure", "recipient", "purposes", "decision", "basis / reasons",
            "documentation / notice")
_WIDTHS = (20, 36, 40, 18, 12, 60, 30)  # the widest a column grows; longer cells are clipped


def _table(report: Any) -> list[str]:
    rows = []
    for f in report.findings:
        why = f.basis or ", ".join(f.reasons) or "-"
        if f.documentation == "not-required" and f.client_notice == "not-required":
            owed = "-"
        else:
            owed = f"{f.documentation} / {f.client_notice}"
        rows.append((f.occurred, f.disclosure, f.recipient or "-", " ".join(f.purposes) or "-",
                     str(f.decision), why, owed))
    widths = [min(limit, max([len(h)] + [len(r[i]) for r in rows]))
              for i, (h, limit) in enumerate(zip(_HEADERS, _WIDTHS, strict=True))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(_HEADERS, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    for row in rows:
        cells = (_clip(c, w).ljust(w) for c, w in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    return lines


def _summary(report: Any) -> str:
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[str(f.decision)] = counts.get(str(f.decision), 0) + 1
    order = ("unauthorized", "review", "required", "permitted", "authorized")
    parts = [f"{counts[d]} {d}" for d in order if counts.get(d)]
    accountable = sum(1 for f in report.findings if f.accountable)
    where = f", jurisdiction {report.jurisdiction}" if report.jurisdiction else ", federal rules"
    return (f"{len(report.findings)} disclosure(s): {', '.join(parts) or 'none'}; "
            f"{accountable} accountable; {len(report.problems)} problem(s); "
            f"ruleset {report.ruleset}{where}")


COMMAND = Command(
    name="evaluate",
    help="decide every disclosure in a FHIR file, offline",
    run=run,
    arguments=arguments,
    description="Check every recorded disclosure (BALP AuditEvent) in FILE against the "
                "client's signed authorizations and the legal exceptions, and print one "
                "finding per disclosure.",
    epilog=EPILOG,
)
