"""The demo's production traffic: a serving process that logs each prediction with
:class:`tripwire.Logger`, and a label feed that posts the outcomes to the collector later."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from tripwire.config import ModelConfig
from tripwire.demo.service import Collector
from tripwire.errors import TripwireError
from tripwire.logger import Logger

POLL = 0.005  # seconds between looks at the logger's counters while it ships


def log_predictions(logger: Logger, config: ModelConfig, table: pa.Table) -> int:
    """Log each row of ``table`` as the serving code would when it made the prediction: with
    the request's id (the one its label will carry), its time and its features, and in its
    metadata what serving decided (the columns the config's proxies read). Returns how many
    were logged."""
    columns = config.columns
    assert columns.id and columns.timestamp  # the demo's config sets them

    def values(name: str | None) -> list[Any]:
        return table.column(name).to_pylist() if name else [None] * table.num_rows

    # Column by column: a row-wise to_pylist() costs more than the logging itself. Unix
    # seconds, which the logger formats fastest.
    micros = table.column(columns.timestamp).to_numpy().astype("datetime64[us]")
    seconds = (micros.astype(np.int64) / 1e6).tolist()
    features = {name: values(name) for name in columns.features}
    segments = {name: values(name) for name in columns.segments}
    taken = {*columns.features, *columns.segments}
    metadata = {
        proxy.column: values(proxy.column)
        for proxy in config.proxies
        if proxy.column in table.column_names and proxy.column not in taken
    }
    for i, (event_id, prediction, latency, status, cost) in enumerate(
        zip(
            values(columns.id),
            values(columns.prediction),
            values(columns.latency_ms),
            values(columns.status),
            values(columns.cost),
            strict=True,
        )
    ):
        logger.log(
            event_id=event_id,
            timestamp=seconds[i],
            features={name: column[i] for name, column in features.items()},
            prediction=prediction,
            latency_ms=latency,
            status=status,
            cost=cost,
            segments={name: str(column[i]) for name, column in segments.items() if column[i]},
            metadata={name: column[i] for name, column in metadata.items()} or None,
        )
    logged: int = table.num_rows
    return logged


def wait_until_shipped(logger: Logger, logged: int) -> None:
    """Wait until the logger's worker has shipped all ``logged`` events it was given.

    The demo's clock moves on only then: a window must hold its day's events when the
    scheduler checks it, as the grace period ensures in production. An event the collector
    did not store would change every figure downstream, so losing one stops the demo.
    """
    while True:
        stats = logger.stats
        if stats.sent + stats.rejected + stats.failed + stats.dropped + stats.invalid >= logged:
            break
        time.sleep(POLL)
    if stats.sent != logged:
        raise TripwireError(f"the collector stored {stats.sent:,} of {logged:,} events: {stats}")


def post_labels(
    client: httpx.Client,
    collector: Collector,
    config: ModelConfig,
    table: pa.Table,
    lag: dt.timedelta,
) -> int:
    """POST the outcomes of the predictions in ``table`` to the collector, each known ``lag``
    after its prediction (the label time the job's label-lag rows measure). Returns how many
    labels were stored."""
    columns = config.columns
    assert columns.id and columns.label and columns.timestamp  # the demo's config sets them
    known = table.column(columns.timestamp).to_numpy() + np.timedelta64(lag)
    # Formatted all at once: a datetime per label would cost more than the labels' JSON.
    labelled_at = np.datetime_as_string(known, unit="us", timezone="UTC").tolist()
    items = [
        {"event_id": event_id, "model": config.name, "label": label, "labelled_at": at}
        for event_id, label, at in zip(
            table.column(columns.id).to_pylist(),
            table.column(columns.label).to_pylist(),
            labelled_at,
            strict=True,
        )
    ]
    response = client.post(
        f"{collector.url}/v1/labels", json={"labels": items}, headers=collector.headers
    )
    response.raise_for_status()
    body = response.json()
    if body["rejected"]:
        raise TripwireError(f"the collector rejected labels: {body['rejected'][:3]}")
    accepted: int = body["accepted"]
    return accepted
