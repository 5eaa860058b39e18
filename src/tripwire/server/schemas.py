"""The collector's request and response bodies, as pydantic models so OpenAPI documents them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from tripwire.events import Event, Label


class EventBatch(BaseModel):
    """A batch of events as JSON. The same events may instead be sent as NDJSON (one event per
    line, ``Content-Type: application/x-ndjson``)."""

    events: list[Event]


class LabelBatch(BaseModel):
    """A batch of labels as JSON, or NDJSON with one label per line."""

    labels: list[Label]


class ItemRejection(BaseModel):
    """One item of a batch that was not stored, and why; it is kept in the quarantine."""

    index: int = Field(description="Position in the batch (the line index for NDJSON), from 0.")
    reason: str


class EventIngestResult(BaseModel):
    """What became of a batch of events."""

    accepted: int = Field(description="Valid events stored now.")
    duplicates: int = Field(
        description="Valid events already stored (same model and event_id), ignored."
    )
    rejected: list[ItemRejection]


class LabelIngestResult(BaseModel):
    """What became of a batch of labels. A later label for an event replaces the earlier one."""

    accepted: int = Field(description="Valid labels stored (new or replacing an earlier one).")
    rejected: list[ItemRejection]


class Health(BaseModel):
    """The collector is up, and the models it accepts."""

    status: str = "ok"
    version: str
    models: list[str]


class QuarantinedItem(BaseModel):
    """An item that failed validation, as it arrived."""

    received_at: datetime
    source: str = Field(description="Where it came from, with its index: `POST /v1/events[3]`.")
    reason: str
    payload: str


class QuarantinePage(BaseModel):
    """One page of a model's quarantine, oldest first."""

    model: str
    total: int
    limit: int
    offset: int
    items: list[QuarantinedItem]
