"""What every command shares: the `Command` row, the one `UsageError`, and `run_command`,
the one mapping of errors to exit codes and one line on standard error.

Exit codes (the same for every command): 0 ok; 1 the work ran but failed in part (a FHIR
server or discovery failed, a scan had errors, `--fail-on` matched, the database was locked or
unreachable for now); 2 unusable input, arguments or configuration (a corrupt or read-only
database included), with one line naming what to fix and no traceback; 130 interrupted.
An unexpected error is exit 2 with its type and first line (`CONSENT_GAP_DEBUG=1` re-raises
it to show the traceback).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

PROG = "consent-gap"
DEBUG_ENV = "CONSENT_GAP_DEBUG"  # set to 1 to see tracebacks of unexpected errors
EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """Unusable input, arguments or configuration: one line on standard error, exit 2."""


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, one-line help, how it declares its arguments, what runs it."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str | None = None
    epilog: str | None = None


def configure_logging() -> None:
    """Progress and outcome lines on standard error (ids and counts only). `logging` is
    imported here: `evaluate`, which logs nothing, does not load it (about 3 ms a start)."""
    import logging

    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _usage_errors() -> tuple[type[BaseException], ...]:
    """The errors that name a setting, argument, file or key to fix (imported late: each
    lives with the code that raises it)."""
    from consent_gap.settings import SettingsError
    from consent_gap.smart.keys import KeyFileError

    return UsageError, SettingsError, KeyFileError


def _database_exit(error: BaseException) -> int | None:
    """The exit code of a database failure (transient: 1, else 2); None for other errors."""
    from consent_gap.database import DatabaseUnavailable

    if isinstance(error, DatabaseUnavailable):
        return EXIT_ERRORS if error.transient else EXIT_USAGE
    return None


def _server_errors() -> tuple[type[BaseException], ...]:
    """The errors of a server that failed or could not be discovered."""
    from consent_gap.fhir.errors import FhirError
    from consent_gap.smart.discovery import DiscoveryError

    return FhirError, DiscoveryError


def run_command(name: str, body: Callable[[], int]) -> int:
    """Run a command's body and turn what it raises into one line on standard error and the
    exit code (module docstring): the one place errors become exit codes."""
    try:
        return int(body() or 0)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG} {name}: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:
        if isinstance(error, _usage_errors()):
            sys.stderr.write(f"{PROG} {name}: {error}\n")
            return EXIT_USAGE
        if isinstance(error, _server_errors()):
            sys.stderr.write(f"{PROG} {name}: {error}\n")
            return EXIT_ERRORS
        database_exit = _database_exit(error)
        if database_exit is not None:
            sys.stderr.write(f"{PROG} {name}: {error}\n")
            return database_exit
        if os.environ.get(DEBUG_ENV):
            raise
        first = str(error).splitlines()[0] if str(error) else ""
        sys.stderr.write(f"{PROG} {name}: failed: {type(error).__name__}: {first} "
                         f"(set {DEBUG_ENV}=1 for details)\n")
        return EXIT_USAGE
