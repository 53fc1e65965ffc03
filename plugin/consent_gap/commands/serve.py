"""`consent-gap serve`: the app on Werkzeug's development server, threaded.

Production runs gunicorn instead (``gunicorn 'consent_gap.web:create_app()'``, as the
Dockerfile does).
"""

from __future__ import annotations

import argparse

from consent_gap.commands.base import EXIT_OK, Command, UsageError, configure_logging


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8082, help="port (default 8082)")


def run(args: argparse.Namespace) -> int:
    """Build the app from the settings (a bad one is exit 2) and serve until stopped."""
    from consent_gap.settings import SettingsError, load_settings
    from consent_gap.web import redact
    from consent_gap.web.app import create_app

    configure_logging()
    redact.install()  # no launch's query string (code, state) in the request log
    try:
        app = create_app(load_settings())
    except (SettingsError, ValueError) as error:
        raise UsageError(str(error)) from None
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return EXIT_OK


COMMAND = Command(
    name="serve",
    help="run the SMART app (panel and API) on the development server",
    run=run,
    arguments=arguments,
    description="Run the app in the chart for development (production: gunicorn, see "
                "the Dockerfile). Settings come from CONSENT_GAP_* variables (README).",
)
