"""The panel's buttons: each a POST with the session's CSRF token, each writing through the
FHIR client with writeback.py's conditional creates (pressing twice writes nothing twice),
each answered by a redirect back to the panel with a confirmation (post/redirect/get).

The finding acted on is decided again from the server's current data, never taken from the
form: the form names only the disclosure, and only one of this launch's patient.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from flask import Blueprint, g, request

from consent_gap import wording, writeback
from consent_gap.domain import Finding
from consent_gap.evaluate import text_names
from consent_gap.fhir import FhirError
from consent_gap.mappings import load_rules
from consent_gap.smart.scopes import permits

from . import services
from .chart import client_for, load_report, registered_device
from .context import Launch
from .pages import add_notice, with_launch
from .pages import back_to_panel as _back
from .view import NO_WRITE_SCOPE, Action, permitted_actions

bp = Blueprint("actions", __name__, url_prefix="/panel/<lid>")
log = logging.getLogger(__name__)

def _finding(launch: Launch) -> tuple[int, Finding] | None:
    """The finding the form names, decided again from the chart; what its notes will call
    the things it names (`evaluate.text_names`) is kept for `_context`."""
    disclosure = (request.form.get("disclosure") or "").strip()
    chart, report = load_report(launch)
    for index, finding in enumerate(report.findings, start=1):
        if finding.disclosure == disclosure:
            g.text_names = text_names(chart.resources, report,
                                      load_rules(services.config().mappings), [finding])
            return index, finding
    return None


def _context(launch: Launch) -> writeback.WriteContext:
    """The write context: the names `_finding` read, for the notes and alerts; the app's
    registered Device (looked up, not created: see chart.registered_device)."""
    config = services.config()
    with client_for(launch) as client:
        device = registered_device(client)
    return writeback.WriteContext(privacy_officer=config.privacy_officer,
                                  organization=config.organization, device=device,
                                  ruleset=load_rules(config.mappings).ruleset,
                                  names=g.get("text_names", {}))


#: A confirmation: its words, then the link to what was written (words, href) if known.
Line = tuple[str, tuple[str, str] | None]


def _write(launch: Launch, finding: Finding, kinds: Iterable[writeback.Kind]) -> list[Line]:
    """Write the finding's resources of ``kinds``; the confirmation lines to show."""
    kinds = set(kinds)
    context = _context(launch)
    planned = writeback.plan(finding, context)
    group = writeback.FindingWrites(
        finding, tuple(w for w in planned.writes if w.kind in kinds)
    )
    if not group:
        return []
    return _send(launch, group, context)


def _send(launch: Launch, group: writeback.FindingWrites,
          context: writeback.WriteContext, label: str | None = None) -> list[Line]:
    """One transaction (conditional creates) for what of ``group`` is not in the chart yet,
    so that its Provenance names only what it creates; a line per resource saying whether it
    was created now or was already there."""
    with client_for(launch) as client:
        found = writeback.written_values(
            [(write.resource_type, write.value) for write in group.writes], client.search,
            patient=group.finding.patient)
        todo = writeback.without(group, found)
        bundle = writeback.transaction([todo], context)
        response = client.transaction(bundle) if bundle else {}
    outcome = writeback.read_response(response, [todo], context)
    if outcome.failed:
        # A transaction is all or nothing: an entry without a good answer means nothing saved.
        raise FhirError(f"transaction answer with failed entries: {sorted(outcome.failed)}")
    results = {result.write.value: result for result in outcome.writes}
    lines = [_line(launch, write, results.get(write.value),
                   found[write.value].reference if write.value in found else None, label)
             for write in group.writes]
    log.info("panel action for launch %s wrote %s", launch.lid,
             ",".join(f"{w.kind}:{w.value[:8]}" for w in group.writes))
    return lines


def _line(launch: Launch, write: writeback.Write, result: writeback.WriteResult | None,
          found: str | None, label: str | None) -> Line:
    """The confirmation for one write, in words: created now or already there, and a link
    that opens it in the EHR (``found``: the reference of what the look-up before sending
    found; the reference is only in the link's href, never on screen)."""
    what = label or wording.kind(write.kind)
    where = (result and result.reference) or found
    link = ((wording.PANEL_OPEN_WRITTEN.format(what=what),
             f"{(launch.iss or '').rstrip('/')}/{where}") if where else None)
    if result is not None and result.status == writeback.WriteStatus.CREATED:
        return wording.PANEL_SAVED.format(what=what), link
    return wording.PANEL_ALREADY_SAVED.format(what=what), link


def granted(action: Action) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run the view only when the launch's scopes allow ``action``'s writes; otherwise say so
    and write nothing (the button is hidden then: this answers a hand-made POST)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(launch: Launch, **kwargs: Any):
            if action in permitted_actions(launch.scopes):
                return view(launch, **kwargs)
            log.warning("panel action %s refused for launch %s: not in the granted scopes",
                        action, launch.lid)
            add_notice(launch.lid, "error", NO_WRITE_SCOPE)
            return _back(launch)

        return wrapper

    return decorate


def _act(launch: Launch, kinds: tuple[writeback.Kind, ...], nothing: str):
    found = _finding(launch)
    if found is None:
        add_notice(launch.lid, "error", "That disclosure is not in this client's chart.")
        return _back(launch)
    index, finding = found
    try:
        lines = _write(launch, finding, kinds)
    except FhirError as error:
        log.warning("panel action failed for launch %s: %s", launch.lid, type(error).__name__)
        add_notice(launch.lid, "error", "The EHR did not accept the write; nothing was saved.")
        return _back(launch, f"finding-{index}")
    for text, link in lines or [(nothing, None)]:
        add_notice(launch.lid, "ok", text, link)
    return _back(launch, f"finding-{index}")


@bp.post("/draft-note")
@with_launch
@granted(Action.DRAFT_NOTE)
def draft_note(launch: Launch):
    return _act(launch, (writeback.Kind.DOCUMENTATION_DRAFT,),
                "Documentation is not missing for this disclosure; nothing was written.")


@bp.post("/notify-officer")
@with_launch
@granted(Action.NOTIFY_OFFICER)
def notify_officer(launch: Launch):
    if not services.config().privacy_officer:
        add_notice(launch.lid, "error",
                   "No privacy officer is configured (CONSENT_GAP_PRIVACY_OFFICER).")
        return _back(launch)
    # CONTRACT 7: the Task goes with the alert when the EHR lets the app create Tasks (the
    # panel's DESIGN scopes do not); otherwise the next scan writes it, dated at this alert.
    task = ((writeback.Kind.TASK,) if permits(launch.scope.split(), "Task", "c") else ())
    return _act(launch, (writeback.Kind.ALERT, writeback.Kind.FINDING_NOTE, *task),
                "This disclosure needs no alert; nothing was written.")


@bp.post("/client-notice")
@with_launch
@granted(Action.CLIENT_NOTICE)
def client_notice(launch: Launch):
    outcome = request.form.get("outcome")
    reason = (request.form.get("reason") or "").strip()
    if outcome not in ("sent", "withheld"):
        add_notice(launch.lid, "error", "Choose whether the notice was sent or withheld.")
        return _back(launch)
    if outcome == "withheld" and not reason:
        add_notice(launch.lid, "error", "Give the reason the notice was withheld.")
        return _back(launch)
    found = _finding(launch)
    if found is None:
        add_notice(launch.lid, "error", "That disclosure is not in this client's chart.")
        return _back(launch)
    index, finding = found
    try:
        context = _context(launch)
        group = writeback.client_notice_record(
            finding, context, sent=outcome == "sent", reason=reason or None,
            author=_launch_user(launch),
        )
        lines = _send(launch, group, context,
                      label=f"record of the client notice ({outcome})")
    except FhirError as error:
        log.warning("client notice failed for launch %s: %s", launch.lid, type(error).__name__)
        add_notice(launch.lid, "error", "The EHR did not accept the write; nothing was saved.")
        return _back(launch, f"finding-{index}")
    for text, link in lines:
        add_notice(launch.lid, "ok", text, link)
    return _back(launch, f"finding-{index}")


def _launch_user(launch: Launch) -> str | None:
    user = launch.fhir_user or ""
    # fhirUser may be absolute; the write needs Type/id.
    parts = user.rstrip("/").split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else None
