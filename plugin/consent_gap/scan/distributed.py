"""The decide step of a bulk scan on Dask (``scan --bulk --workers N``, or the cluster named by
``CONSENT_GAP_DASK_SCHEDULER``).

Each partition is one batch of whole patients (scan/bulk.py assembles it from the spool, with
its follow-ups already fetched), so a worker decides with nothing but what it is sent: the
run's bound evaluator (scattered once to every worker) and the batch's resources. It returns the
Report without its normalized charts. Results come back to the scan process, which alone writes
back and checkpoints. At most `IN_FLIGHT` partitions per worker are out at a time, so the
scan's memory stays bounded however many patients there are.

``--workers N`` starts a ``LocalCluster`` of N single-threaded worker processes for the run
(the engine is pure Python: threads would share one interpreter lock) and closes it after.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("consent_gap.scan")

#: Partitions submitted per worker before the oldest is awaited.
IN_FLIGHT = 2


def decide_partition(evaluator: Any, resources: list[dict[str, Any]]) -> Any:
    """On a worker: decide one batch. The charts are left out of the answer (the scan needs
    the findings and problems only)."""
    report = evaluator(resources)
    return dataclasses.replace(report, charts={})


@contextmanager
def dask_decider(evaluator: Any, *, workers: int | None = None,
                 scheduler: str | None = None) -> Iterator[Any]:
    """A `decide_many(charts) -> (index, report)...` running on Dask; `scheduler` names an
    existing cluster, else `workers` local processes are started (and stopped after)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        from consent_gap.commands.base import UsageError

        raise UsageError("--workers and CONSENT_GAP_DASK_SCHEDULER need Dask: "
                         "pip install 'consent-gap[dask]'") from None

    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.WARNING)
        client = Client(cluster)
    try:
        size = max(1, len(client.scheduler_info().get("workers", {})))
        log.info("dask: deciding on %d worker(s)%s", size,
                 f" at {scheduler}" if scheduler else " (local cluster)")
        bound = client.scatter(evaluator, broadcast=True)

        def decide_many(charts: Iterable[list[dict[str, Any]]]) -> Iterator[tuple[int, Any]]:
            pending: deque[tuple[int, Any]] = deque()
            for index, resources in enumerate(charts):
                pending.append((index, client.submit(decide_partition, bound, resources,
                                                     pure=False)))
                while len(pending) >= size * IN_FLIGHT:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()

        yield decide_many
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
