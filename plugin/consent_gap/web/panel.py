"""The panel: one page per launch, made for a narrow iframe in the chart."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request

from consent_gap import normalize, writeback
from consent_gap.mappings import load_rules

from . import services
from .chart import load_report
from .context import Launch
from .pages import take_notices, with_launch
from .view import build_view

bp = Blueprint("panel", __name__)
log = logging.getLogger(__name__)


@bp.get("/panel/<lid>")
@with_launch
def show(launch: Launch):
    if request.method == "HEAD":
        # The launch exists; reading the chart and deciding it is for a GET (a HEAD must not
        # cost the EHR a chart's worth of reads, nor take the notices meant for the page).
        return "", 200, {"Content-Type": "text/html; charset=utf-8"}
    chart, report = load_report(launch)
    config = services.config()
    rules = load_rules(config.mappings)
    releases = normalize.read_released(chart.resources, rules,
                                       [f.disclosure for f in report.findings])
    written = normalize.written(chart.resources, writeback.FINDING_SYSTEM)
    view = build_view(launch, report, config, rules, releases, written)
    return render_template("panel.html", view=view, notices=take_notices(launch.lid))
