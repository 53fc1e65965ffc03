"""``consent-gap serve``: the app on Werkzeug's development server (production: gunicorn,
``gunicorn 'consent_gap.web:create_app()'``, as the Dockerfile does)."""

from __future__ import annotations

import argparse
import logging
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="run the SMART app (panel, API) for development",
        description="Run the app on the development server. Settings come from CONSENT_GAP_* "
        "variables (see README); use gunicorn in production.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8082, help="port (default 8082)")
    parser.add_argument("--debug", action="store_true",
                        help="Flask debug mode (never in production)")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from consent_gap.settings import SettingsError, load_settings

    from .app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        app = create_app(load_settings())
    except SettingsError as error:
        print(f"consent-gap serve: {error}", file=sys.stderr)
        return 2
    app.run(host=args.host, port=args.port, debug=args.debug, threaded=True,
            use_reloader=False)
    return 0
