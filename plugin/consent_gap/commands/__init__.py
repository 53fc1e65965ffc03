"""The shells of the command line: one module per `consent-gap` command.

Each module declares its arguments and its `run(args) -> int` and exposes them as one
`COMMAND = Command(...)` (commands/base.py); `cli.py` registers the commands in the order
`--help` lists them and dispatches to them. A module imports only the standard library and
`commands.base` at the top; what its command needs (the engine, requests, Flask, pydantic) is
imported inside `run`, so building the parser stays cheap and `consent-gap evaluate` never pays
for the web app.

To add a command `x`: write `commands/x.py` with `COMMAND = Command("x", "one-line help",
arguments=..., run=...)` and add the line `x.COMMAND,` to `cli.COMMANDS`. Raise
`base.UsageError` for input or arguments the user must fix (exit 2); `base.run_command` maps
it, and every other error a user can act on, to the exit status in one place.
"""
