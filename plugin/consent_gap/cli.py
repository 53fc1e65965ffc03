"""The `consent-gap` command: `evaluate` here; `scan`, `schedule`, `serve` register below.

Each subcommand is a `Command` row: its arguments are declared here (cheap), and its module is
imported only when it runs, so `consent-gap evaluate` never pays for Flask, requests or
pydantic. To add one: write `def _x_arguments(p)`, append `Command("x", "...", "consent_gap.x",
"run", _x_arguments)` to COMMANDS; `run(args) -> int` receives the parsed namespace.

Exit codes: 0 evaluated (whatever was found); 1 with `--fail-on unauthorized` when such a
finding exists; 2 on unusable input, with one line on standard error and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

PROG = "consent-gap"
DEBUG_ENV = "CONSENT_GAP_DEBUG"  # set to 1 to see tracebacks of unexpected errors


class UsageError(Exception):
    """Unusable input or arguments: printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


@dataclass(frozen=True)
class Command:
    """A subcommand: name, one-line help, the module and function that run it (lazy)."""

    name: str
    help: str
    module: str
    function: str = "run"
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None
    epilog: str | None = None


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------

EVALUATE_EPILOG = """\
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


def _evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="FHIR R4 Bundle, JSON array or NDJSON of "
                        "resources; - reads standard input")
    parser.add_argument("--jurisdiction", metavar="US-XX", help="ISO 3166-2 code of the state "
                        "whose duty to warn and age of majority apply (default: federal only)")
    parser.add_argument("--format", choices=("json", "text"), default="json",
                        help="json (default, CONTRACT section 2) or text (a table for people)")
    parser.add_argument("--fail-on", choices=("unauthorized",), dest="fail_on",
                        help="exit 1 when any finding is unauthorized")
    parser.add_argument("--mappings", metavar="DIR", help="another mappings folder "
                        "(default: $CONSENT_GAP_MAPPINGS, else the packaged tables)")


def _shown(name: str) -> str:
    """FILE as error messages name it."""
    return "standard input" if name == "-" else name


def read_input(name: str) -> Any:
    """The parsed JSON (or NDJSON) of FILE or standard input; UsageError if unusable."""
    from consent_gap.normalize import InputError, parse_text

    shown = _shown(name)
    try:
        if name == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(name, "rb") as handle:
                raw = handle.read()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise UsageError(f"{name}: is a directory, not a file") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    if not raw.strip():
        raise UsageError(f"{shown}: is empty, expected a FHIR Bundle")
    try:
        return parse_text(raw)
    except InputError as exc:
        raise UsageError(f"{shown}: {exc}") from None


def run_evaluate(args: argparse.Namespace) -> int:
    """Read, decide, print. The collector is paused from reading to printing (`gc_paused`:
    parsing a large file builds millions of objects it would rescan for nothing)."""
    from consent_gap.evaluate import gc_paused

    with gc_paused():
        return _run_evaluate(args)


def _run_evaluate(args: argparse.Namespace) -> int:
    from consent_gap.evaluate import evaluate, resolve_jurisdiction
    from consent_gap.mappings import MappingsError, load_rules
    from consent_gap.normalize import InputError

    try:  # the arguments first: a typo should not wait for a large file to be read
        rules = load_rules(args.mappings)
        resolve_jurisdiction(rules, args.jurisdiction)
    except (MappingsError, InputError) as exc:
        raise UsageError(str(exc)) from None
    data = read_input(args.file)
    try:
        report = evaluate(data, args.jurisdiction, rules=rules)
    except InputError as exc:
        raise UsageError(f"{_shown(args.file)}: {exc}") from None
    if args.format == "text":
        text = render_text(report)
    else:
        text = json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    if args.fail_on == "unauthorized" and any(
            f.decision == "unauthorized" for f in report.findings):
        return 1
    return 0


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


# --------------------------------------------------------------------------------------------
# serve (the app in the chart; consent_gap.web.serve)
# --------------------------------------------------------------------------------------------

def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8082, help="port (default 8082)")


# --------------------------------------------------------------------------------------------
# scan and schedule (consent_gap.scan, consent_gap.scheduler)
# --------------------------------------------------------------------------------------------

SCAN_EPILOG = """\
examples:
  consent-gap scan --fhir-base http://127.0.0.1:8080/fhir --full --dry-run
  consent-gap scan --auth backend --jurisdiction US-CA          (incremental, from settings)
  consent-gap scan --patient p-1 --patient p-2 --format json
  consent-gap scan --status

Without --patient, --since or --full the scan is incremental: the patients whose records
changed since the last successful run (full when there is none). Settings: CONSENT_GAP_*
variables (README). exit status: 0 ok; 1 errors during the scan (listed in the summary; a
stopped scan resumes next time); 2 bad usage or configuration.
"""


def _scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fhir-base", metavar="URL",
                        help="FHIR base URL (default: CONSENT_GAP_FHIR_BASE)")
    parser.add_argument("--auth", choices=("none", "backend"),
                        help="none, or SMART Backend Services (default: CONSENT_GAP_AUTH)")
    parser.add_argument("--patient", action="append", default=[], metavar="ID",
                        help="scan only this patient (repeatable)")
    since = parser.add_mutually_exclusive_group()
    since.add_argument("--since", metavar="TIME",
                       help="patients whose records changed since TIME (date or date-time)")
    since.add_argument("--full", action="store_true", help="every patient on the server")
    parser.add_argument("--jurisdiction", metavar="US-XX",
                        help="ISO 3166-2 state code (default: CONSENT_GAP_JURISDICTION)")
    parser.add_argument("--dry-run", action="store_true",
                        help="decide and print what would be written; write nothing")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--status", action="store_true",
                        help="print the last run's outcome and exit")


def _schedule_arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--once", action="store_true", help="run one scan now and exit")
    what.add_argument("--status", action="store_true",
                      help="print the next run and the last run's outcome")
    parser.add_argument("--format", choices=("text", "json"), default="text")


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------

COMMANDS: list[Command] = [
    Command(
        name="evaluate",
        help="decide every disclosure in a FHIR file, offline",
        module="consent_gap.cli",
        function="run_evaluate",
        arguments=_evaluate_arguments,
        description="Check every recorded disclosure (BALP AuditEvent) in FILE against the "
                    "client's signed authorizations and the legal exceptions, and print one "
                    "finding per disclosure.",
        epilog=EVALUATE_EPILOG,
    ),
    Command(
        name="scan",
        help="check every disclosure on a FHIR server and write the findings back",
        module="consent_gap.scan",
        arguments=_scan_arguments,
        description="Select patients, fetch their records in batches, decide every disclosure "
                    "and write what is missing back to the chart (alerts, notes, drafts, "
                    "reminders), conditionally, so a rerun writes nothing.",
        epilog=SCAN_EPILOG,
    ),
    Command(
        name="schedule",
        help="run the scan on its schedule, in its own process (default nightly at 02:00)",
        module="consent_gap.scheduler",
        arguments=_schedule_arguments,
        description="APScheduler in the foreground: one scan job on CONSENT_GAP_SCHEDULE (cron, "
                    "in CONSENT_GAP_TIMEZONE), one run at a time, missed runs coalesced.",
        epilog="exit status: 0 ok; 1 the --once scan had errors; 2 bad usage or configuration",
    ),
    Command(
        name="serve",
        help="run the SMART app (panel and API) on the development server",
        module="consent_gap.web.serve",
        arguments=_serve_arguments,
        description="Run the app in the chart for development (production: gunicorn, see "
                    "the Dockerfile). Settings come from CONSENT_GAP_* variables (README).",
    ),
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Flags therapy disclosures that lack a signed authorization or a legal "
                    "exception, and says why in plain words.",
        epilog="run 'consent-gap COMMAND --help' for a command's options and examples",
    )
    from consent_gap import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in COMMANDS:
        child = sub.add_parser(command.name, help=command.help,
                               description=textwrap.fill(command.description or command.help,
                                                         79),
                               epilog=command.epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        if command.arguments is not None:
            command.arguments(child)
        child.set_defaults(_command=command)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = args._command
    try:
        module = importlib.import_module(command.module)
        return int(getattr(module, command.function)(args) or 0)
    except UsageError as exc:
        sys.stderr.write(f"{PROG}: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        first = str(exc).splitlines()[0] if str(exc) else ""
        sys.stderr.write(f"{PROG}: {command.name} failed: {type(exc).__name__}: {first} "
                         f"(set {DEBUG_ENV}=1 for details)\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
