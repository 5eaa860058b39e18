"""The production loop the demo lives through, one simulated day at a time.

A serving process (:mod:`tripwire.demo.serving`) logs each prediction with
:class:`tripwire.Logger` to the collector, which stores it in the DuckDB file; a label feed
posts the outcomes of earlier predictions to ``POST /v1/labels``; then the scheduler's clock
moves past the day's end and its grace period, and a pass of the scheduler checks the windows
due and rechecks those whose labels landed, running the monitoring job, which delivers alerts
through the outbox.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx
import pyarrow as pa

from tripwire.config import ModelConfig
from tripwire.demo.service import Collector, collector
from tripwire.demo.serving import ServingProcess
from tripwire.demo.traffic import post_labels
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.scheduler import JobRecord, Scheduler
from tripwire.store import Store

IDLE = dt.timedelta(days=1)


class Clock:
    """The scheduler's clock: simulated time, moved by the demo."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class Throughput:
    """What went through the pipeline."""

    events: int = 0  # logged by the serving process and stored by the collector
    labels: int = 0  # posted by the label feed and stored by the collector
    checked: int = 0  # windows the scheduler checked as they closed
    rechecked: int = 0  # windows it checked again when their labels landed
    alerts: int = 0  # alert messages the job put in the outbox

    def add(self, records: list[JobRecord]) -> None:
        for record in records:
            if record.outcome == "failed":
                raise TripwireError(f"checking {record.window_start:%Y-%m-%d}: {record.error}")
            self.checked += record.outcome == "checked"
            self.rechecked += record.outcome == "rechecked"
            self.alerts += record.announced


@dataclass
class Pipeline:
    """The running pieces: the collector, the serving process, the label feed and the
    scheduler with its clock. Made by :func:`pipeline`."""

    config: ModelConfig
    scheduler: Scheduler
    clock: Clock
    collector: Collector
    serving: ServingProcess
    feed: httpx.Client
    alerts: TextIO
    throughput: Throughput = field(default_factory=Throughput)

    def live(
        self, start: dt.datetime, labelled: pa.Table | None, following: Path | None
    ) -> list[JobRecord]:
        """The window starting at ``start``, whose traffic the serving process is serving.

        Once its events are stored, the label feed posts the labels of the predictions in
        ``labelled`` (made a label lag earlier); the clock moves past the window's end and
        grace; the serving process goes on with the ``following`` traffic, and the
        scheduler makes its pass meanwhile.
        """
        config = self.config
        self.throughput.events = self.serving.shipped()
        if labelled is not None:
            self.throughput.labels += post_labels(
                self.feed, self.collector, config, labelled, config.label_lag
            )
        self.clock.now = start + config.window + self.scheduler.grace
        if following is not None:
            self.serving.serve(following)
        # The demo's routes are console channels, which print each alert to stderr: keep them
        # in a file rather than between the progress bar and the timeline.
        with redirect_stderr(self.alerts):
            records = self.scheduler.run_due()
        self.throughput.add(records)
        return records


@contextmanager
def pipeline(
    monitor: Monitor, store: Store, start: dt.datetime, serving: ServingProcess, alerts: TextIO
) -> Iterator[Pipeline]:
    """Start the collector over ``store``, with a scheduler for ``monitor`` whose clock reads
    ``start``, and the label feed, and connect ``serving`` to the collector; stop them when the
    block ends. Console alerts are written to ``alerts``."""
    config = monitor.config
    clock = Clock(start)
    # The demo makes each pass itself as its clock moves; the thread that the collector starts
    # makes its first pass at once, when nothing is due, and then waits this long.
    scheduler = Scheduler(
        {config.name: monitor}, store, threading.Lock(), clock, interval=IDLE.total_seconds()
    )
    with collector({config.name: config}, scheduler) as service, httpx.Client() as feed:
        serving.connect(service)
        yield Pipeline(config, scheduler, clock, service, serving, feed, alerts)
