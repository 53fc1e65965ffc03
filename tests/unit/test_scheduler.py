"""Scheduler wiring: one stable job, cron from settings, persistent store (SQLite and
PostgreSQL: the `database_url` fixture), status."""

import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from consent_gap import scheduler as sched
from consent_gap.checkpoint import OK, CheckpointStore
from consent_gap.settings import Settings, SettingsError


def settings_for(tmp_path: Path, **changes) -> Settings:
    values = {"fhir_base": "http://fhir.test/fhir", "state_dir": tmp_path,
              "checkpoint_url": f"sqlite:///{tmp_path / 'cp.db'}"}
    values.update(changes)
    return Settings(**values)


def test_job_is_registered_once_with_the_configured_cron(tmp_path, database_url):
    settings = settings_for(tmp_path, schedule="15 3 * * 1-5", timezone="America/Chicago",
                            checkpoint_url=None, database=database_url)
    for _ in range(2):  # a restart replaces the job instead of adding a second one
        scheduler = sched.build_scheduler(settings, blocking=False)
        scheduler.start(paused=True)
        jobs = scheduler.get_jobs()
        assert sorted(job.id for job in jobs) == sorted([sched.JOB_ID, sched.NOTIFY_JOB_ID])
        job = scheduler.get_job(sched.JOB_ID)
        assert isinstance(job.trigger, CronTrigger)
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["minute"], fields["hour"]) == ("15", "3")
        assert fields["day_of_week"] == "mon,tue,wed,thu,fri"
        assert str(job.trigger.timezone) == "America/Chicago"
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.misfire_grace_time == sched.MISFIRE_GRACE_SECONDS
        assert job.func is sched.scheduled_scan
        assert job.args == () and job.kwargs == {}
        scheduler.shutdown(wait=False)


def test_default_schedule_is_nightly(tmp_path):
    trigger = sched.cron_trigger(settings_for(tmp_path))
    start = datetime.fromisoformat("2026-11-29T12:00:00+00:00")
    fire = trigger.get_next_fire_time(None, start)
    assert (fire.hour, fire.minute, fire.day) == (2, 0, 30)


@pytest.mark.parametrize(
    ("field", "weekdays"),
    [
        ("1-5", ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
        ("0", ["Sunday"]),
        ("7", ["Sunday"]),
        ("6,0", ["Saturday", "Sunday"]),
        ("*/3", ["Sunday", "Wednesday", "Saturday"]),
        ("mon-fri", ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
    ],
)
def test_weekdays_keep_their_cron_meaning(tmp_path, field, weekdays):
    """APScheduler 3 counts 0 as Monday; the schedule must keep cron's 0 = Sunday."""
    trigger = sched.cron_trigger(settings_for(tmp_path, schedule=f"0 2 * * {field}"))
    fire, seen = datetime.fromisoformat("2026-11-29T03:00:00+00:00"), set()
    for _ in range(14):
        fire = trigger.get_next_fire_time(None, fire)
        seen.add(fire.strftime("%A"))
        fire = fire.replace(hour=3)
    assert seen == set(weekdays)


def test_bad_cron_names_the_variable(tmp_path):
    with pytest.raises(SettingsError, match="CONSENT_GAP_SCHEDULE"):
        sched.cron_trigger(settings_for(tmp_path, schedule="61 2 * * *"))


def test_second_scheduler_is_refused(tmp_path):
    with (
        sched.single_instance(tmp_path),
        pytest.raises(SettingsError, match="another consent-gap scheduler"),
        sched.single_instance(tmp_path),
    ):
        pass
    with sched.single_instance(tmp_path):
        pass  # released


def test_status_shows_next_run_and_last_outcome(tmp_path, database_url):
    settings = settings_for(tmp_path, checkpoint_url=None, database=database_url)
    out = io.StringIO()
    sched.status(settings, "text", out)
    assert "not registered" in out.getvalue()
    assert "no scan has run yet" in out.getvalue()
    scheduler = sched.build_scheduler(settings, blocking=False)
    scheduler.start(paused=False)
    scheduler.shutdown(wait=False)
    store = CheckpointStore(settings.database_url)
    run = store.start(settings.fhir_base, selection="s", mode="full", since=None,
                      jurisdiction=None, dry_run=False)
    store.record_batch(run.id, patients=["p1", "p2"], written={"Communication": 2})
    store.finish(run.id, OK)
    store.close()
    out = io.StringIO()
    sched.status(settings, "json", out)
    shown = json.loads(out.getvalue())
    assert shown["job"] == sched.JOB_ID
    assert shown["next_run"] is not None
    assert shown["last_run"]["status"] == "ok"
    assert shown["last_run"]["written"] == {"Communication": 2}


def test_once_runs_one_scan_with_current_settings(tmp_path, monkeypatch):
    calls = []

    class Summary:
        status, run, patients_done, written, errors = "ok", 1, 3, {"Communication": 1}, []

    def fake_run_scan(settings, should_stop=None):
        calls.append(settings.fhir_base)
        return Summary()

    monkeypatch.setattr("consent_gap.scan.run_scan", fake_run_scan)
    monkeypatch.setenv("CONSENT_GAP_FHIR_BASE", "http://fhir.test/fhir")
    monkeypatch.setenv("CONSENT_GAP_STATE_DIR", str(tmp_path))
    assert sched.scheduled_scan() == 0
    Summary.status = "errors"
    assert sched.scheduled_scan() == 1
    assert calls == ["http://fhir.test/fhir"] * 2


def test_status_checks_the_cron_expression_as_the_scheduler_does(tmp_path):
    with pytest.raises(SettingsError, match="CONSENT_GAP_SCHEDULE"):
        sched.status(settings_for(tmp_path, schedule="0 25 * * *"), "text", io.StringIO())
