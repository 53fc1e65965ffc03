"""`consent-gap subscribe`: create, conditionally and idempotently, the FHIR Subscriptions that
tell the app when a disclosure, a Consent or a signature is written (the resources:
writeback/subscriptions.py; the endpoint: web/notify.py; the re-checks: scan/notifications.py).

Each Subscription is looked up by its tag; absent, it is created with ``If-None-Exist`` on that
tag, with a Provenance naming the app; present and as wanted, nothing is written; present but
different (a new secret, new codes in the mappings), it is updated with ``If-Match`` on the
version read. A rerun writes nothing.
"""

from __future__ import annotations

import argparse

from consent_gap.commands.base import EXIT_OK, Command, UsageError, configure_logging

EPILOG = """\
examples:
  CONSENT_GAP_NOTIFY_SECRET=... consent-gap subscribe --fhir-base http://127.0.0.1:8080/fhir
  consent-gap subscribe --notify-url https://app.example.org/fhir-notify --dry-run
  consent-gap subscribe --remove        (delete them: the server stops notifying the app)

Settings: CONSENT_GAP_NOTIFY_SECRET (required), CONSENT_GAP_NOTIFY_URL (default
<CONSENT_GAP_PUBLIC_URL>/fhir-notify), CONSENT_GAP_FHIR_BASE, CONSENT_GAP_AUTH. The app must run
with the same secret; the scheduler (`consent-gap schedule`) runs the re-checks.
exit status: 0 ok; 1 the server refused a write; 2 bad usage or configuration.
"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fhir-base", metavar="URL",
                        help="FHIR base URL (default: CONSENT_GAP_FHIR_BASE)")
    parser.add_argument("--auth", choices=("none", "backend"),
                        help="none, or SMART Backend Services (default: CONSENT_GAP_AUTH)")
    parser.add_argument("--notify-url", metavar="URL",
                        help="where the server sends notifications (default: "
                             "CONSENT_GAP_NOTIFY_URL, else <public_url>/fhir-notify)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--dry-run", action="store_true",
                      help="print what would be created or updated; write nothing")
    what.add_argument("--remove", action="store_true",
                      help="delete this endpoint's Subscriptions (and their Provenance)")


def run(args: argparse.Namespace) -> int:
    from consent_gap.scan.subscriptions import ensure_subscriptions, remove_subscriptions
    from consent_gap.scan.wiring import make_client, scan_settings
    from consent_gap.settings import require

    configure_logging()
    settings = scan_settings(args).with_overrides(notify_url=args.notify_url)
    require(settings, "fhir_base")
    endpoint = settings.notify_url or settings.public_url.rstrip("/") + "/fhir-notify"
    if args.remove:
        client = make_client(settings)
        try:
            for line in remove_subscriptions(client, endpoint, mappings=settings.mappings):
                print(line)
        finally:
            client.close()
        return EXIT_OK
    if not settings.notify_secret:
        raise UsageError("CONSENT_GAP_NOTIFY_SECRET is not set: the app refuses "
                         "notifications without it")
    client = make_client(settings)
    try:
        for line in ensure_subscriptions(client, endpoint, settings.notify_secret,
                                         mappings=settings.mappings, dry_run=args.dry_run):
            print(line)
    finally:
        client.close()
    return EXIT_OK


COMMAND = Command(
    name="subscribe",
    help="create the FHIR Subscriptions that trigger a re-check when a chart changes",
    run=run,
    arguments=arguments,
    description="Create (conditionally, idempotently) the rest-hook Subscriptions for "
                "disclosure AuditEvents, disclosure Communications, Consents and their "
                "signatures, delivered to the app's /fhir-notify with a secret header.",
    epilog=EPILOG,
)
