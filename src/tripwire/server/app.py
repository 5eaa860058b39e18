"""The server's HTTP app: ``create_app`` wires the collector, the read API, the dashboard and
``/metrics`` to a store it owns."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from tripwire import __version__
from tripwire.config import ModelConfig
from tripwire.logger import DROPPED_HEADER, LOGGER_ID_HEADER
from tripwire.scheduler import Scheduler, SchedulerStatus
from tripwire.server.admin import admin_router
from tripwire.server.api import api_router
from tripwire.server.auth import bearer_guard
from tripwire.server.body import JSON, NDJSON, BodyError, MediaTypeError, parse_batch
from tripwire.server.collector import Collector, LoggerReport
from tripwire.server.metrics import metrics_router
from tripwire.server.schemas import (
    EventBatch,
    EventIngestResult,
    Health,
    LabelBatch,
    LabelIngestResult,
    QuarantinePage,
)
from tripwire.store import Store

MAX_BODY_BYTES = 64 * 1024 * 1024
DESCRIPTION = """\
The tripwire server. It receives prediction events and their delayed labels, validates them
against each model's config and stores them in the tripwire store: invalid items are rejected
one by one (with their index and reason) and kept in the quarantine, the rest of their batch is
stored. Its scheduler checks each model's windows as they close. It serves what the store holds:
the read API under `/v1` (models, windows, metric series, incidents with their runbooks and
deliveries, calibrations, digests, backtests, gate decisions), the dashboard at `/dashboard`
and Prometheus metrics at `/metrics`.
"""
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is not a batch (malformed JSON, wrong shape); nothing stored."},
    401: {"description": "Missing or wrong bearer token."},
    413: {"description": "The body is larger than the collector accepts."},
    415: {"description": "Content-Type is neither application/json nor application/x-ndjson."},
}


def create_app(
    configs: Mapping[str, ModelConfig],
    store: Store,
    ingest_token: str | None,
    read_token: str | None,
    *,
    max_body_bytes: int = MAX_BODY_BYTES,
    scheduler: Scheduler | None = None,
    admin_token: str | None = None,
    parse_workers: int = 0,
) -> FastAPI:
    """The collector for ``configs`` (by model name), writing to ``store``.

    ``ingest_token`` guards the endpoints that write, ``read_token`` the ones that read what was
    stored; ``None`` leaves them open. The app owns ``store`` while it runs: DuckDB allows one
    writing process, and the app serializes its own threads' use of the connection.

    A ``scheduler`` (over the same store) runs while the app does, and ``GET /v1/jobs`` shows
    its state.

    An ``admin_token`` opens ``/v1/admin`` to it: the commands' store work, done on ``store``
    (see :mod:`tripwire.server.admin`).

    ``parse_workers`` processes parse and validate event bodies (see
    :mod:`tripwire.server.parsing`); with 0, the request's thread does.
    """
    if scheduler is not None and scheduler.store is not store:
        raise ValueError("the scheduler must use the app's store")
    # The scheduler, the collector and the admin tasks share one connection, so one lock.
    lock = scheduler.lock if scheduler else threading.Lock()
    collector = Collector(configs, store, lock, parse_workers)
    ingest = Depends(bearer_guard(ingest_token, "IngestToken"))
    read = Depends(bearer_guard(read_token, "ReadToken"))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(collector.parser.start)
        if scheduler is not None:
            scheduler.start()
        try:
            yield
        finally:
            await run_in_threadpool(collector.parser.close)
            if scheduler is not None:
                # stop() waits for the window being checked; not on the event loop.
                await run_in_threadpool(scheduler.stop)

    app = FastAPI(title="tripwire", version=__version__, description=DESCRIPTION, lifespan=lifespan)

    app.state.collector = collector

    @app.exception_handler(BodyError)
    def _bad_body(_: Request, exc: BodyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_400_BAD_REQUEST)

    @app.exception_handler(MediaTypeError)
    def _bad_media_type(_: Request, exc: MediaTypeError) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc)}, status_code=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
        )

    @app.post(
        "/v1/events",
        dependencies=[ingest],
        responses=_ERRORS,
        openapi_extra=_batch_body(EventBatch, "One event object per line."),
    )
    async def post_events(request: Request) -> EventIngestResult:
        """Store a batch of prediction events (idempotent on model and event_id).

        A `tripwire.Logger` names itself and says how many events it has dropped so far in
        the `Tripwire-Logger-Id` and `Tripwire-Logger-Dropped` headers; `/metrics` adds
        those counts up per model (`tripwire_logger_dropped_events_total`)."""
        raw = await _read_body(request, max_body_bytes)
        content_type = request.headers.get("content-type")
        logger = LoggerReport.of(
            request.headers.get(LOGGER_ID_HEADER), request.headers.get(DROPPED_HEADER)
        )

        # Parsing, validation (in the parser's worker processes, when it has any) and the
        # write are CPU and disk work: off the event loop, in one trip to the thread pool.
        return await run_in_threadpool(collector.ingest_event_body, content_type, raw, logger)

    @app.post(
        "/v1/labels",
        dependencies=[ingest],
        responses=_ERRORS,
        openapi_extra=_batch_body(LabelBatch, "One label object per line."),
    )
    async def post_labels(request: Request) -> LabelIngestResult:
        """Store a batch of labels, joined to their events by model and event_id."""
        raw = await _read_body(request, max_body_bytes)
        batch = await run_in_threadpool(
            parse_batch, request.headers.get("content-type"), raw, "labels"
        )
        return await run_in_threadpool(collector.ingest_labels, batch)

    @app.get("/v1/health")
    def health() -> Health:
        """The collector is up; no token needed."""
        return Health(version=__version__, models=sorted(collector.configs))

    @app.get("/v1/quarantine", dependencies=[read], responses={401: _ERRORS[401]})
    def quarantine(
        model: Annotated[str, Query(description="The model whose rejected items to list.")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> QuarantinePage:
        """Items rejected for a model, with why, oldest first."""
        return collector.quarantine_page(model, limit, offset)

    @app.get(
        "/v1/jobs",
        dependencies=[read],
        responses={401: _ERRORS[401], 404: {"description": "The scheduler is off."}},
    )
    def jobs() -> SchedulerStatus:
        """The scheduled checks per model: the latest window checked, when the next is due,
        the latest error."""
        if scheduler is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail="no scheduler runs in this collector (tripwire serve --no-schedule)",
            )
        return scheduler.status()

    if admin_token is not None:
        app.include_router(admin_router(store, lock, admin_token))
    app.include_router(metrics_router(configs, store, lock, read_token, collector, scheduler))
    app.include_router(api_router(configs, store, lock, read_token, admin_token, scheduler))
    _document_batches(app)
    return app


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        detail=f"the body is larger than {limit:,} bytes: send smaller batches",
    )


def _batch_body(model: type[BaseModel], line: str) -> dict[str, Any]:
    # The endpoints read the body themselves (to take NDJSON and reject items one by one), so
    # FastAPI cannot infer it; this declares both formats in the OpenAPI spec.
    return {
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}},
                NDJSON: {"schema": {"type": "string", "description": line}},
            },
        }
    }


def _document_batches(app: FastAPI) -> None:
    """Add the batch models that ``_batch_body`` refers to to the spec's schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = spec.setdefault("components", {}).setdefault("schemas", {})
            for model in (EventBatch, LabelBatch):
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[model.__name__] = schema
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
