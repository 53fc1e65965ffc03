"""`consent-gap check FILE --proposal P.json`: may this disclosure be made, and what must be
done (CONTRACT 6), offline on a chart.

Exit codes: 0 answered (whatever the answer); 2 unusable input or an invalid proposal, with
one line on standard error naming the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from consent_gap.commands.base import EXIT_OK, Command, UsageError
from consent_gap.commands.evaluate import read_input

EPILOG = """\
examples:
  consent-gap check chart.json --proposal proposal.json --jurisdiction US-CA
  cat chart.json | consent-gap check - --proposal proposal.json --format text

The proposal (CONTRACT 6.1) names the patient, when (default now), the scenario or purposes,
the recipient, the data and any legal instruments. The answer (6.2) is the finding the
disclosure would get, the steps to take, and whether an authorization can be drafted.
exit status: 0 answered; 2 unusable chart, invalid proposal or unknown jurisdiction.
"""


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the chart: a FHIR R4 Bundle, JSON array "
                        "or NDJSON of resources; - reads standard input")
    parser.add_argument("--proposal", metavar="P.json", required=True,
                        help="the proposed disclosure (CONTRACT 6.1), a JSON file")
    parser.add_argument("--jurisdiction", metavar="US-XX", help="ISO 3166-2 code of the state "
                        "whose duty to warn and age of majority apply (default: federal only)")
    parser.add_argument("--format", choices=("json", "text"), default="json",
                        help="json (default, CONTRACT 6.2) or text (for people)")
    parser.add_argument("--mappings", metavar="DIR", help="another mappings folder")


def _read_proposal_file(name: str) -> Any:
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise UsageError(f"{name}: no such file") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot be read ({exc.strerror or exc})") from None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{name}: the proposal is not JSON ({exc})") from None


def run(args: argparse.Namespace) -> int:
    from consent_gap.evaluate import evaluator
    from consent_gap.mappings import MappingsError, load_rules
    from consent_gap.normalize import InputError
    from consent_gap.proposal import ProposalError, check, read_proposal

    try:
        rules = load_rules(args.mappings)
        decide = evaluator(args.jurisdiction, rules=rules)
    except (MappingsError, InputError) as exc:
        raise UsageError(str(exc)) from None
    raw = _read_proposal_file(args.proposal)
    try:
        proposal = read_proposal(raw, rules, now=datetime.now(UTC))
    except ProposalError as exc:
        raise UsageError(f"{args.proposal}: {exc}") from None
    chart = read_input(args.file)
    try:
        answer = check(chart, proposal, decide, rules=rules, place=decide.place)
    except ProposalError as exc:
        raise UsageError(f"{args.proposal}: {exc}") from None
    except InputError as exc:
        raise UsageError(f"{'standard input' if args.file == '-' else args.file}: {exc}") \
            from None
    if args.format == "text":
        text = render_text(answer)
    else:
        text = json.dumps(answer.to_json(), indent=2, ensure_ascii=False) + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    return EXIT_OK


def render_text(answer: Any) -> str:
    """The answer for a person at a terminal: the decision, why, then the steps."""
    lines = []
    finding = answer.finding
    if finding is None:
        lines.append("Nothing is to be disclosed.")
    else:
        lines.append(f"decision: {finding.decision}"
                     + (f" ({finding.basis})" if finding.basis else "")
                     + (f"; reasons: {', '.join(finding.reasons)}" if finding.reasons else ""))
        lines.append(finding.explanation)
        if finding.documentation != "not-required":
            lines.append(f"documentation {finding.documentation}; client notice "
                         f"{finding.client_notice}")
    lines += ["", "steps:"]
    lines += [f"  {i}. [{s.code}] {s.text}" for i, s in enumerate(answer.steps, 1)]
    if answer.can_draft_authorization:
        lines += ["", "An authorization for this disclosure can be drafted for the client to "
                      "sign."]
    return "\n".join(lines) + "\n"


COMMAND = Command(
    name="check",
    help="before a disclosure: may it be made, and what must be done",
    run=run,
    arguments=arguments,
    description="Decide a proposed disclosure (CONTRACT 6) against the chart with the same "
                "engine as evaluate, and print the answer and the steps.",
    epilog=EPILOG,
)
