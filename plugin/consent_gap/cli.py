"""The `consent-gap` command line: builds the parser from the registered commands and
dispatches to the one named.

Each command lives in its own module of commands/ (how to add one: commands/__init__.py);
registering it is one line in COMMANDS. What a command raises becomes an exit code and one
line on standard error in one place, commands.base.run_command.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import NoReturn

from consent_gap.commands import (
    accounting,
    check,
    evaluate,
    keys,
    scan,
    schedule,
    serve,
    subscribe,
)
from consent_gap.commands.base import PROG, Command, run_command

#: The commands, in the order `--help` lists them.
COMMANDS: list[Command] = [
    evaluate.COMMAND,
    check.COMMAND,
    accounting.COMMAND,
    scan.COMMAND,
    schedule.COMMAND,
    serve.COMMAND,
    keys.COMMAND,
    subscribe.COMMAND,
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (exit 2) instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


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
    args = build_parser().parse_args(argv)
    command: Command = args._command
    return run_command(command.name, lambda: command.run(args))


if __name__ == "__main__":
    sys.exit(main())
