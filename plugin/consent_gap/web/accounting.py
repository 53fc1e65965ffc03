"""The panel's page "Accounting of disclosures" (CONTRACT 8) for the launched patient, with
its print layout and the same document as a PDF to download.

The chart is read as the panel reads it (`chart.fetch_chart`), completed with whom and what
its disclosures name (`fetch_plan.fetch_named`: names and addresses instead of ids), decided by
`evaluate` on exactly what is shown, and accounted by the pure `accounting` module.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, Response, redirect, render_template, request, url_for

from consent_gap import accounting as core
from consent_gap.documents import accounting_pdf, document
from consent_gap.fetch_plan import fetch_named
from consent_gap.fhir.search import Key, collect

from . import services
from .chart import client_for, fetch_chart
from .context import Launch, LaunchMissing, get_launch
from .pages import expired_page, message, with_launch

bp = Blueprint("accounting", __name__)
log = logging.getLogger(__name__)


def _options() -> tuple[datetime, bool, dict[str, str]]:
    """As-of (a date from the form, default now) and --summarize, from the query string."""
    raw = (request.args.get("as_of") or "").strip()
    as_of = core.parse_as_of(raw) if raw else core.now()
    summarized = request.args.get("summarize") == "1"
    query = {k: v for k, v in (("as_of", raw), ("summarize", "1" if summarized else ""))
             if v}
    return as_of, summarized, query


def _accounting(launch: Launch, as_of: datetime, summarized: bool) -> core.Accounting:
    from consent_gap.evaluate import evaluate
    from consent_gap.mappings import load_rules

    config = services.config()
    patient = launch.patient or ""
    patient_ref = f"Patient/{patient}"
    client = client_for(launch)
    with client:
        rules = load_rules(config.mappings)
        chart = fetch_chart(client, patient, rules=rules)
        found: dict[Key, dict] = {}
        collect(found, chart.resources)
        fetch_named(client, found, extra=[config.organization], patient_id=patient)
    resources = list(found.values())
    report = evaluate(resources, config.jurisdiction, rules=rules, base=launch.iss)
    log.info("accounting for launch %s: %d resources", launch.lid, len(resources))
    return core.account(resources, report, rules, patient_ref, as_of,
                        summarized=summarized, organization=config.organization)


class _BadDate(ValueError):
    """The as-of of the form cannot be read."""


def _requested(launch: Launch) -> tuple[core.Accounting, dict[str, str]]:
    """The accounting the query string asks for (as-of, summarize) and that query."""
    try:
        as_of, summarized, query = _options()
    except ValueError:
        raise _BadDate from None
    return _accounting(launch, as_of, summarized), query


def _bad_date():
    return message(400, "That date cannot be read",
                   "Give the date of the request as YYYY-MM-DD.")


@bp.get("/accounting")
def latest():
    """DESIGN's `/accounting`: the page for `?launch=<id>`, else the session's latest launch."""
    try:
        launch = get_launch(request.args.get("launch"))
    except LaunchMissing:
        return expired_page()
    query = {k: v for k, v in request.args.items() if k in ("as_of", "summarize")}
    return redirect(url_for("accounting.show", lid=launch.lid, **query))


@bp.get("/accounting/<lid>")
@with_launch
def show(launch: Launch):
    try:
        accounting, query = _requested(launch)
    except _BadDate:
        return _bad_date()
    return render_template("accounting.html", doc=document(accounting, core.now()),
                           lid=launch.lid, query=query, summarized=accounting.summarized,
                           as_of_date=accounting.as_of.date().isoformat())


@bp.get("/accounting/<lid>/pdf")
@with_launch
def pdf(launch: Launch):
    try:
        accounting, _query = _requested(launch)
    except _BadDate:
        return _bad_date()
    name = f"accounting-of-disclosures-{accounting.as_of.date().isoformat()}.pdf"
    return Response(accounting_pdf(accounting, core.now()), mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "Cache-Control": "no-store"})
