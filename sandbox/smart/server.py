"""Start the SMART sandbox launcher in the foreground (logs on stdout).

    .venv/bin/python sandbox/smart/server.py --port 8081 \
        --upstream http://127.0.0.1:8080/fhir --clients sandbox/smart/clients.toml
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from smart_launcher.app import build_app  # noqa: E402
from smart_launcher.config import ConfigError  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

DEFAULT_KEYS = HERE.parent / "var" / "keys"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="SMART App Launch 2.x sandbox launcher")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--upstream", default="http://127.0.0.1:8080/fhir", help="FHIR base to proxy"
    )
    parser.add_argument("--clients", type=Path, default=HERE / "clients.toml")
    parser.add_argument(
        "--keys-dir", type=Path, default=DEFAULT_KEYS, help="key pairs (created when absent)"
    )
    parser.add_argument("--public-origin", help="scheme://host:port the launcher is reached at")
    parser.add_argument("--app-origin", help="scheme://host:port of the consent-gap app "
                        "(default: the clients file's [launcher] app_origin)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # its request lines carry query strings
    origin = args.public_origin or f"http://{args.host}:{args.port}"
    try:
        app = build_app(args.clients, origin=origin, upstream=args.upstream,
                        keys_dir=args.keys_dir, app_origin=args.app_origin)
    except ConfigError as exc:
        print(f"smart launcher: {exc}", file=sys.stderr)
        return 2
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except OSError as exc:
        print(
            f"smart launcher: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 1
    logging.getLogger("smart_launcher").info(
        "listening on %s (FHIR base %s/fhir, upstream %s)", origin, origin, args.upstream
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
