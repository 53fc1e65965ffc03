"""``consent-gap serve``: the app on Werkzeug's development server, threaded.

Production runs gunicorn instead (``gunicorn 'consent_gap.web:create_app()'``, as the
Dockerfile does); the arguments are declared in cli.py.
"""

from __future__ import annotations

import argparse
import logging
import sys


def run(args: argparse.Namespace) -> int:
    from consent_gap.settings import SettingsError, load_settings

    from . import redact
    from .app import create_app

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    redact.install()
    try:
        app = create_app(load_settings())
    except (SettingsError, ValueError) as error:
        print(f"consent-gap serve: {error}", file=sys.stderr)
        return 2
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return 0
