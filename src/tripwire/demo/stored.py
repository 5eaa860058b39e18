"""Reading back from the store what the scheduler's checks left there: a window's report and
the model's incidents."""

from __future__ import annotations

import datetime as dt

from tripwire.alerts.engine import Incident
from tripwire.errors import TripwireError
from tripwire.monitor import Monitor
from tripwire.profile import serialize
from tripwire.report.model import Report
from tripwire.store import Store


def stored_report(monitor: Monitor, store: Store, start: dt.datetime) -> Report:
    """The report of the window of the model's length starting at ``start``, evaluated from the
    profile its check stored (as the check evaluated it, histograms included)."""
    length = monitor.config.window
    stored = store.profiles(monitor.config.name, length, start, start + length)
    if not stored:
        raise TripwireError(f"no stored window of {monitor.config.name} starts at {start}")
    [(_, profile)] = stored
    # Labelled as the job labels the reports it checks.
    return monitor.evaluate(serialize.from_bytes(profile), window=f"{start:%Y-%m-%d %H:%M}")


def stored_incidents(store: Store, model: str) -> list[Incident]:
    """The model's incidents as the job last saved them, in the order the engine lists them."""
    incidents = [
        Incident(**{k: v for k, v in row.items() if k not in ("namespace", "updated_at")})
        for row in store.incidents(model).to_pylist()
    ]
    return sorted(incidents, key=lambda i: (i.opened_at, i.rule, i.feature, i.segment))
