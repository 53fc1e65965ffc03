"""The nightly scan on a schedule (``consent-gap schedule [--once | --status]``, whose
arguments are in commands/schedule.py).

APScheduler 3.x, a ``BlockingScheduler`` in its own process (never inside the web server's
workers: two workers would run every scan twice). One job, ``consent-gap-scan``, on a
``CronTrigger`` from ``CONSENT_GAP_SCHEDULE`` in ``CONSENT_GAP_TIMEZONE`` (default nightly at
02:00 UTC), kept in a ``SQLAlchemyJobStore`` in the checkpoint database, so a restart knows
when the job last ran and a missed night is caught up once (the one database of
``CONSENT_GAP_DATABASE_URL``: SQLite or PostgreSQL):

- ``max_instances=1``: a scan still running when the next is due is not started twice;
- ``coalesce=True``: several missed runs (the machine was off) become one;
- ``misfire_grace_time`` six hours: a run missed by less than that still happens;
- ``replace_existing=True`` with a stable id: each start re-registers the job with the current
  schedule instead of adding a second one (APScheduler deletes a stored job whose function has
  moved, so the function is a stable module-level name, :func:`scheduled_scan`).

A second job, ``consent-gap-notified``, drains the queue of FHIR Subscription notifications
every ``CONSENT_GAP_NOTIFY_INTERVAL`` seconds (scan/notifications.py): the patients the server
says changed are re-checked here, in the scheduler's process, within seconds, never in a web
worker. It has its own executor thread, so a long nightly scan does not hold the re-checks
back, and a memory job store (an interval job has nothing to catch up after a restart: the
queue itself is durable). The nightly scan still catches a lost notification.

The jobs store no arguments: they read the settings when they run, so no secret sits in the job
store. Each run's outcome goes to the checkpoint store (``consent-gap schedule --status`` or
``consent-gap scan --status`` print it). A lock file in the state folder keeps a second
scheduler from starting on the same machine.
"""

from __future__ import annotations

import fcntl
import logging
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

from consent_gap.checkpoint import OK, CheckpointStore
from consent_gap.commands.base import EXIT_ERRORS, EXIT_OK
from consent_gap.database import database_errors, make_engine
from consent_gap.settings import Settings, SettingsError, load_settings, require

log = logging.getLogger("consent_gap.scheduler")

JOB_ID = "consent-gap-scan"
NOTIFY_JOB_ID = "consent-gap-notified"
JOB_TABLE = "consent_gap_jobs"
MISFIRE_GRACE_SECONDS = 6 * 3600
#: Set on SIGTERM: a running scan stops between two batches (resumable) instead of being cut.
STOP = threading.Event()


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """Cron's day-of-week field in APScheduler 3's terms. Cron counts 0 (and 7) as Sunday;
    APScheduler 3 counts 0 as Monday, even in ``CronTrigger.from_crontab`` (its issue 286), so
    ``1-5`` would run Tuesday to Saturday. Numbers become day names; names pass unchanged."""
    if field == "*":
        return field
    days: list[str] = []
    for part in field.split(","):
        base, _, step = part.partition("/")
        if not re.fullmatch(r"\*|[0-7](-[0-7])?", base) or (step and not step.isdigit()):
            days.append(part)  # names (mon-fri) mean the same in both
            continue
        if base == "*":
            low, high = 0, 6
        elif "-" in base:
            low, high = (int(n) for n in base.split("-"))
        else:
            low = int(base)
            high = 6 if step else low
        for day in range(low, high + 1, int(step) if step else 1):
            name = _CRON_DAYS[day % 7]
            if name not in days:
                days.append(name)
    return ",".join(days)


def cron_trigger(settings: Settings) -> Any:
    """The CronTrigger of ``CONSENT_GAP_SCHEDULE`` (standard cron meaning, weekdays
    included); a SettingsError names the variable when it is invalid."""
    from apscheduler.triggers.cron import CronTrigger

    minute, hour, day, month, weekday = settings.schedule.split()
    try:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=crontab_weekdays(weekday), timezone=settings.timezone)
    except ValueError as error:
        raise SettingsError(f"CONSENT_GAP_SCHEDULE: {error}") from None


def scheduled_scan() -> int:
    """The job: one incremental scan with the settings as they are now. Returns the scan's
    exit status (logged; APScheduler ignores it)."""
    from consent_gap.scan import run_scan

    settings = load_settings()
    summary = run_scan(settings, should_stop=STOP.is_set)
    log.info("scheduled scan %s: run %s, %d patients, %d written, %d errors",
             summary.status, summary.run, summary.patients_done,
             sum(summary.written.values()), len(summary.errors))
    return EXIT_OK if summary.status == OK else EXIT_ERRORS


_DRAIN_LOCK = threading.Lock()


def drain_notifications(settings: Settings | None = None, *, force: bool = False) -> Any:
    """The notification job: re-check the patients of the queued notifications (one scan of
    each patient per settled burst). Returns the DrainResult."""
    from consent_gap.scan import run_scan
    from consent_gap.scan.notifications import NotifyQueue, drain
    from consent_gap.scan.wiring import make_client

    settings = settings or load_settings()
    with _DRAIN_LOCK:
        notify = NotifyQueue(settings.database_url)
        client = make_client(settings)
        try:
            return drain(notify, client,
                         lambda **kw: run_scan(settings, should_stop=STOP.is_set, **kw),
                         force=force)
        finally:
            client.close()
            notify.close()


def build_scheduler(settings: Settings, *, blocking: bool = True) -> Any:
    """A scheduler with the scan job registered (not started)."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.schedulers.blocking import BlockingScheduler

    trigger = cron_trigger(settings)
    CheckpointStore(settings.database_url).close()  # creates the folder and the tables
    kind = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = kind(
        jobstores={"default": SQLAlchemyJobStore(engine=make_engine(settings.database_url),
                                                 tablename=JOB_TABLE),
                   "memory": {"type": "memory"}},
        executors={"default": {"type": "threadpool", "max_workers": 1},
                   "notify": {"type": "threadpool", "max_workers": 1}},
        job_defaults={"coalesce": True, "max_instances": 1,
                      "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        timezone=settings.timezone,
    )
    scheduler.add_job(
        scheduled_scan,
        trigger=trigger,
        id=JOB_ID,
        name="consent-gap scan",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=MISFIRE_GRACE_SECONDS,
    )
    scheduler.add_job(
        drain_notifications,
        trigger="interval",
        seconds=settings.notify_interval,
        id=NOTIFY_JOB_ID,
        name="consent-gap re-checks on notification",
        jobstore="memory",
        executor="notify",
        replace_existing=True,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=max(1, settings.notify_interval),
    )
    return scheduler


@contextmanager
def single_instance(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``state_dir/scheduler.lock`` or refuse to start."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "scheduler.lock"
    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SettingsError(f"another consent-gap scheduler holds {path}") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def serve(settings: Settings) -> int:
    """Run the scheduler until SIGTERM or Ctrl-C."""
    require(settings, "fhir_base")
    with single_instance(settings.state_dir):
        scheduler = build_scheduler(settings)

        def stop(signum: int, _frame: Any) -> None:
            log.info("signal %d: stopping the scheduler (a running scan stops after its "
                     "current batch and resumes next time)", signum)
            STOP.set()
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        log.info("scheduler started: job %s, schedule %r (%s)", JOB_ID, settings.schedule,
                 settings.timezone)
        with suppress(KeyboardInterrupt, SystemExit), database_errors(settings.database_url):
            scheduler.start()
    return EXIT_OK


def status(settings: Settings, fmt: str, out: TextIO | None = None) -> int:
    """The job's next run (from the job store) and the last scan's outcome."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from consent_gap.scan.output import print_json

    stream = out or sys.stdout
    cron_trigger(settings)  # the schedule is checked as `schedule` checks it
    CheckpointStore(settings.database_url).close()
    jobstore = SQLAlchemyJobStore(engine=make_engine(settings.database_url), tablename=JOB_TABLE)
    with database_errors(settings.database_url):
        jobstore.start(None, "default")  # type: ignore[arg-type]
        try:
            job = jobstore.lookup_job(JOB_ID)
        finally:
            jobstore.shutdown()
    store = CheckpointStore(settings.database_url)
    try:
        runs = store.last_runs(settings.fhir_base, limit=1)
    finally:
        store.close()
    next_run = job.next_run_time.isoformat() if job and job.next_run_time else None
    record = {
        "job": JOB_ID if job else None,
        "schedule": settings.schedule,
        "timezone": settings.timezone,
        "registered_trigger": str(job.trigger) if job else None,
        "next_run": next_run,
        "last_run": runs[0].to_json() if runs else None,
    }
    if fmt == "json":
        print_json(record, stream)
        return EXIT_OK
    if job is None:
        print("the scan job is not registered (start `consent-gap schedule` once)", file=stream)
    else:
        print(f"job {JOB_ID}: registered as {job.trigger}, next run {next_run or 'paused'} "
              f"(the settings say {settings.schedule!r} in {settings.timezone}; a running "
              "scheduler re-registers on its next start)", file=stream)
    last = record["last_run"]
    if last is None:
        print("no scan has run yet", file=stream)
    else:
        print(f"last run {last['run']}: {last['status']}, started {last['started']}, finished "
              f"{last['finished'] or '-'}, patients {last['patients']['done']}/"
              f"{last['patients']['total']}, written {last['written']}, errors "
              f"{last['errors']['count']}", file=stream)
    return EXIT_OK
