"""Which patients a scan run looks at: the selectors.

A run's `Selection` is chosen from its options and the checkpoint (`choose`), then listed as
patient ids (`patients`):

- ``patients``: the ids named with ``--patient``;
- ``full``: every Patient on the server (``--full``, or no successful run yet);
- ``incremental`` (the default): the patients with a disclosure, Consent, signing Provenance,
  or someone's note or notice changed since ``--since`` or, by default, since the start of the
  last successful run on this server minus `OVERLAP`.

A new selector (a bulk export's patients, a subscription's notifications) is a new mode here:
how `choose` picks it and how `patients` lists its ids; the scanner only sees the ids. The
mode, its starting point and the patients make the run's `selection_key`, so a stopped run
resumes only when started again with the same selection.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from consent_gap import fetch_plan
from consent_gap.commands.base import UsageError
from consent_gap.fhir.client import FhirClient

#: Overlap when the incremental scan starts from the last good run (clock skew, slow commits).
OVERLAP = timedelta(minutes=5)

PATIENTS, FULL, INCREMENTAL = "patients", "full", "incremental"


@dataclass(frozen=True)
class Selection:
    """A run's mode and, for an incremental run, the instant it starts from."""

    mode: str
    since: str | None = None


def instant(text: str) -> str:
    """--since as a UTC instant ``YYYY-MM-DDTHH:MM:SSZ`` (a date means its first instant)."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: not a date or date-time: {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def choose(*, patients: Sequence[str], full: bool, since: str | None,
           last_success: str | None) -> Selection:
    """The selection of the options; `last_success` is the start of the last good run on
    this server (None when there is none, which makes a default run full)."""
    if patients:
        return Selection(PATIENTS)
    if full:
        return Selection(FULL)
    if since:
        return Selection(INCREMENTAL, instant(since))
    if last_success is None:
        return Selection(FULL)
    moment = datetime.fromisoformat(last_success.replace("Z", "+00:00")) - OVERLAP
    return Selection(INCREMENTAL, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def patients(client: FhirClient, selection: Selection, named: Sequence[str], *,
             page_size: int) -> list[str]:
    """The patient ids of a selection (``named``: the ids given with ``--patient``)."""
    if selection.mode == PATIENTS:
        return sorted({p.removeprefix("Patient/") for p in named})
    if selection.mode == INCREMENTAL:
        assert selection.since is not None
        return fetch_plan.changed_patient_ids(client, selection.since, page_size=page_size)
    return fetch_plan.all_patient_ids(client)


def selection_key(selection: Selection, named: Sequence[str], jurisdiction: str | None,
                  ruleset: str) -> str:
    """What a resumed run must match: the selection, the patients, jurisdiction and rules."""
    text = json.dumps([selection.mode, selection.since, sorted(named), jurisdiction, ruleset])
    return hashlib.sha256(text.encode()).hexdigest()[:32]
