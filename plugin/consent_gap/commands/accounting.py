"""`consent-gap accounting`: a client's accounting of disclosures (CONTRACT 8), from a chart
file or from the FHIR server (`--fhir-base`, with the scan's settings and authorization).

Exit codes: 0 written; 1 the server failed; 2 unusable input or arguments (a missing file, a
bad --as-of, an unknown patient), one line on standard error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from consent_gap.commands.base import EXIT_OK, Command, UsageError

EPILOG = """\
examples:
  consent-gap accounting chart.json --patient p-1 --as-of 2026-12-02
  consent-gap accounting chart.json --patient p-1 --format pdf -o accounting.pdf
  consent-gap accounting --fhir-base http://127.0.0.1:8080/fhir --patient p-1 --summarize
  consent-gap accounting --auth backend --patient p-1 --format html -o accounting.html

The entries are the client's accountable disclosures (45 CFR 164.528; unauthorized ones
included) made from six calendar years before --as-of up to --as-of, both ends included.
Without FILE the chart is read from --fhir-base (default: CONSENT_GAP_FHIR_BASE) with the
scan's authorization (--auth, CONSENT_GAP_AUTH and the key settings). The header names the
practice from CONSENT_GAP_ORGANIZATION.
exit status: 0 written; 1 the FHIR server failed; 2 unusable input (no such file, not FHIR,
bad --as-of, unknown patient or jurisdiction).
"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", nargs="?",
                        help="FHIR R4 Bundle, JSON array or NDJSON of the chart; - reads "
                             "standard input (omit it to read the chart from --fhir-base)")
    parser.add_argument("--patient", metavar="ID", required=True,
                        help="the client: a Patient id or Patient/<id>")
    parser.add_argument("--as-of", metavar="TIME", dest="as_of",
                        help="date or date-time of the request (default: now); a date alone "
                             "is its first instant, UTC")
    parser.add_argument("--jurisdiction", metavar="US-XX",
                        help="ISO 3166-2 state code (default: CONSENT_GAP_JURISDICTION)")
    parser.add_argument("--format", choices=("json", "html", "pdf"), default="json",
                        help="json (default, CONTRACT section 8), html or pdf")
    parser.add_argument("--summarize", action="store_true",
                        help="one entry per recipient, purpose and basis, with first, last "
                             "and count (45 CFR 164.528(b)(3))")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="write to OUT instead of standard output")
    parser.add_argument("--fhir-base", metavar="URL",
                        help="read the chart from this FHIR server (default: "
                             "CONSENT_GAP_FHIR_BASE when FILE is not given)")
    parser.add_argument("--auth", choices=("none", "backend"),
                        help="none, or SMART Backend Services (default: CONSENT_GAP_AUTH)")


def run(args: argparse.Namespace) -> int:
    """Check the arguments, read the chart, decide, account, write."""
    from consent_gap.accounting import now, parse_as_of, patient_reference
    from consent_gap.evaluate import gc_paused

    try:
        patient = patient_reference(args.patient)
        as_of = parse_as_of(args.as_of) if args.as_of is not None else now()
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.file is not None and args.fhir_base:
        raise UsageError("give FILE or --fhir-base, not both")
    with gc_paused():
        accounting = _accounting(args, patient, as_of)
    _write(args, accounting)
    return EXIT_OK


def _accounting(args: argparse.Namespace, patient: str, as_of: Any) -> Any:
    from consent_gap.accounting import UnknownPatient, account
    from consent_gap.commands.evaluate import read_input
    from consent_gap.normalize import InputError
    from consent_gap.scan.wiring import bound_evaluator, scan_settings

    settings = scan_settings(args)
    decide = bound_evaluator(settings)
    if args.file is not None:
        data: Any = read_input(args.file)
        shown = "standard input" if args.file == "-" else args.file
    else:
        data = _from_server(settings, patient, decide.rules)
        shown = settings.fhir_base
    try:
        report = decide(data)
        return account(data, report, decide.rules, patient, as_of, summarized=args.summarize,
                       organization=settings.organization)
    except InputError as error:
        raise UsageError(f"{shown}: {error}") from None
    except UnknownPatient:
        raise UsageError(f"{shown}: no patient {patient}") from None


def _from_server(settings: Any, patient: str, rules: Any) -> list[dict]:
    """The patient's chart by the project's fetch plan, with the parties it names and the
    practice; UsageError when the server has no such patient."""
    from consent_gap.fetch_plan import ChartCodes, fetch_accounting_chart
    from consent_gap.fhir.errors import FhirHttpError
    from consent_gap.scan.wiring import make_client
    from consent_gap.settings import require

    if not settings.fhir_base:
        raise UsageError("give FILE, or --fhir-base (or set CONSENT_GAP_FHIR_BASE)")
    require(settings, "fhir_base")
    pid = patient.split("/", 1)[1]
    with make_client(settings) as client:
        try:
            client.read("Patient", pid)
        except FhirHttpError as error:
            if error.status in (404, 410):
                raise UsageError(f"{settings.fhir_base}: no patient {patient}") from None
            raise
        return fetch_accounting_chart(client, pid, codes=ChartCodes.from_rules(rules),
                                      extra=[settings.organization])


def _write(args: argparse.Namespace, accounting: Any) -> None:
    import json

    from consent_gap.accounting import now

    if args.format == "json":
        body: bytes = (json.dumps(accounting.to_json(), indent=2, ensure_ascii=False)
                       + "\n").encode()
    elif args.format == "html":
        from consent_gap.documents import accounting_html

        body = accounting_html(accounting, now()).encode()
    else:
        from consent_gap.documents import accounting_pdf

        body = accounting_pdf(accounting, now())
    if args.output and args.output != "-":
        try:
            with open(args.output, "wb") as handle:
                handle.write(body)
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot be written ({exc.strerror or exc})") \
                from None
        return
    sys.stdout.buffer.write(body)
    sys.stdout.flush()


COMMAND = Command(
    name="accounting",
    help="a client's accounting of disclosures (45 CFR 164.528) as JSON, HTML or PDF",
    run=run,
    arguments=arguments,
    description="List the client's accountable disclosures (unauthorized ones included) of "
                "the six years before the request: date, recipient's name and address, what "
                "was disclosed, purpose and legal basis, and the written request where there "
                "was one; from a chart file or from the FHIR server.",
    epilog=EPILOG,
)
