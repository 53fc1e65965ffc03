"""The panel: one page per launch, made for a narrow iframe in the chart."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request

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
    _chart, report = load_report(launch)
    view = build_view(launch, report, services.config())
    return render_template("panel.html", view=view, notices=take_notices(launch.lid))
