"""`consent-gap scan`: check every disclosure on a FHIR server and write the findings back
(the scan itself: consent_gap/scan/)."""

from __future__ import annotations

import argparse

from consent_gap.commands.base import EXIT_ERRORS, EXIT_OK, Command, UsageError, configure_logging

EPILOG = """\
examples:
  consent-gap scan --fhir-base http://127.0.0.1:8080/fhir --full --dry-run
  consent-gap scan --auth backend --jurisdiction US-CA          (incremental, from settings)
  consent-gap scan --patient p-1 --patient p-2 --format json
  consent-gap scan --status
  consent-gap scan --bulk --group g-1 --workers 2  (Bulk Data $export, decided on Dask)

Without --patient, --since or --full the scan is incremental: the patients whose records
changed since the last successful run (full when there is none). Settings: CONSENT_GAP_*
variables (README). exit status: 0 ok; 1 errors during the scan (listed in the summary; a
stopped scan resumes next time); 2 bad usage or configuration.
"""


def arguments(parser: argparse.ArgumentParser) -> None:
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
    parser.add_argument("--bulk", action="store_true",
                        help="read the server through Bulk Data $export (incremental after "
                             "the first successful bulk run; --full for a whole export)")
    parser.add_argument("--group", metavar="ID",
                        help="with --bulk: export Group/ID instead of the whole server")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="with --bulk: decide on a local Dask cluster of N processes "
                             "(CONSENT_GAP_DASK_SCHEDULER names an existing cluster instead)")


def run(args: argparse.Namespace) -> int:
    """One scan with the settings and these arguments, then its summary on standard output."""
    from consent_gap.checkpoint import OK
    from consent_gap.scan.output import print_status, print_summary
    from consent_gap.scan.wiring import run_scan, scan_settings

    configure_logging()
    settings = scan_settings(args)
    if args.status:
        print_status(settings, args.format)
        return EXIT_OK
    if args.patient and (args.since or args.full):
        raise UsageError("--patient cannot be combined with --since or --full")
    if args.bulk and (args.patient or args.since):
        raise UsageError("--bulk cannot be combined with --patient or --since (use --group; "
                         "a bulk run starts from the last successful one)")
    if (args.group or args.workers) and not args.bulk:
        raise UsageError("--group and --workers go with --bulk")
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise UsageError("--workers: must be between 1 and 256")
    summary = run_scan(settings, patients=args.patient, since=args.since, full=args.full,
                       dry_run=args.dry_run, bulk=args.bulk, group=args.group,
                       workers=args.workers,
                       dask_scheduler=settings.dask_scheduler if args.bulk else None)
    print_summary(summary, args.format)
    return EXIT_OK if summary.status == OK else EXIT_ERRORS


COMMAND = Command(
    name="scan",
    help="check every disclosure on a FHIR server and write the findings back",
    run=run,
    arguments=arguments,
    description="Select patients, fetch their records in batches, decide every disclosure "
                "and write what is missing back to the chart (alerts, notes, drafts, "
                "reminders), conditionally, so a rerun writes nothing.",
    epilog=EPILOG,
)
