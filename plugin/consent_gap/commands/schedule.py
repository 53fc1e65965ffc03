"""`consent-gap schedule [--once | --status]`: the scan on its schedule, in its own process
(the scheduler itself: scheduler.py)."""

from __future__ import annotations

import argparse

from consent_gap.commands.base import Command, configure_logging


def arguments(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--once", action="store_true", help="run one scan now and exit")
    what.add_argument("--status", action="store_true",
                      help="print the next run and the last run's outcome")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def run(args: argparse.Namespace) -> int:
    """Print the status, run one scan, or run the scheduler until stopped."""
    from consent_gap import scheduler
    from consent_gap.settings import load_settings

    configure_logging()
    settings = load_settings()
    if args.status:
        return scheduler.status(settings, args.format)
    if args.once:
        return scheduler.scheduled_scan()
    return scheduler.serve(settings)


COMMAND = Command(
    name="schedule",
    help="run the scan on its schedule, in its own process (default nightly at 02:00)",
    run=run,
    arguments=arguments,
    description="APScheduler in the foreground: one scan job on CONSENT_GAP_SCHEDULE (cron, "
                "in CONSENT_GAP_TIMEZONE), one run at a time, missed runs coalesced.",
    epilog="exit status: 0 ok; 1 the --once scan had errors; 2 bad usage or configuration",
)
