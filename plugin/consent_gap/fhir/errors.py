"""Errors raised by the FHIR client, with messages a person can act on.

A FHIR server explains a failure in an OperationOutcome. These classes turn one into a one-line
message built only from the issues' severity, code, `diagnostics` and `details.text` (truncated),
and never from the raw body, which may echo names or notes back. Request URLs in messages carry
the path only, never the query string (search values can be names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Longest piece of server text kept per issue, so a server that echoes a whole resource into
#: `diagnostics` cannot flood a log.
MAX_ISSUE_TEXT = 300


class FhirError(Exception):
    """Anything the FHIR layer could not do; the message is safe to log."""


class FhirTransportError(FhirError):
    """No usable HTTP response: connection refused, timeouts, after the retries allowed."""


class FhirPagingError(FhirError):
    """A searchset that cannot be followed safely (link to another origin, a loop, not a Bundle)."""


class FhirHttpError(FhirError):
    """The server answered with an error status.

    `status` is the HTTP status, `outcome` the OperationOutcome dict when the server sent one
    (kept for callers that want the codes; never printed whole), `issues` the readable lines.
    """

    def __init__(
        self,
        status: int,
        outcome: Mapping[str, Any] | None = None,
        *,
        method: str = "",
        path: str = "",
        issues: Sequence[str] | None = None,
    ) -> None:
        self.status = status
        self.outcome = dict(outcome) if outcome else None
        self.method = method
        self.path = path
        self.issues = list(issues) if issues is not None else outcome_issues(outcome)
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = f" on {self.method} {self.path}".rstrip() if self.method else ""
        detail = "; ".join(self.issues) if self.issues else "no OperationOutcome in the response"
        return f"HTTP {self.status}{where}: {detail}"


class FhirTransactionError(FhirHttpError):
    """A transaction (or batch) failed; `issues` holds one line per failing entry when known."""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ISSUE_TEXT else text[: MAX_ISSUE_TEXT - 1] + "…"


def outcome_issues(outcome: Mapping[str, Any] | None) -> list[str]:
    """One readable line per OperationOutcome issue: `severity (code): text`.

    The text is `diagnostics`, else `details.text`, else the first `details.coding.display`.
    Anything that is not an OperationOutcome gives no lines.
    """
    if not isinstance(outcome, Mapping) or outcome.get("resourceType") != "OperationOutcome":
        return []
    lines = []
    for issue in outcome.get("issue") or []:
        if not isinstance(issue, Mapping):
            continue
        details = issue.get("details") if isinstance(issue.get("details"), Mapping) else {}
        text = issue.get("diagnostics") or details.get("text")
        if not text:
            codings = [c for c in details.get("coding") or [] if isinstance(c, Mapping)]
            text = next((c.get("display") for c in codings if c.get("display")), None)
        head = f"{issue.get('severity', 'error')} ({issue.get('code', 'unknown')})"
        lines.append(f"{head}: {_clip(str(text))}" if text else head)
    return lines
