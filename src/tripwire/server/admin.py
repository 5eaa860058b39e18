"""``/v1/admin``: the commands' store work, done by the server that owns the store.

DuckDB lets one process write a file, so while ``tripwire serve`` runs, ``tripwire run``,
``replay``, ``labels load``, ``calibrate``, ``backtest``, ``gate`` and ``digest`` send their
requests here (see :mod:`tripwire.commands.remote`) and the server does the same task the command
would (:mod:`tripwire.tasks`) on its store, holding the lock the collector and the scheduler
hold, so the task's store work never runs at the same time as a scheduled check or a write of
a batch. ``run`` lets the lock go while it sends the alerts it queued, as the scheduler does, so
a channel slow to answer holds up no ingestion.
The admin token guards every endpoint; ``tripwire serve`` puts it in the server file beside the
store, readable by its user only.
"""

from __future__ import annotations

import inspect
import os
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, status

from tripwire import __version__, tasks
from tripwire.config import ConfigError
from tripwire.errors import TripwireError
from tripwire.server.auth import bearer_guard
from tripwire.store import Store
from tripwire.tasks import Request, Result, StoreOwner, Task

_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong admin token."},
    422: {"description": "The task failed (say, no events in the period): `detail` says why."},
}


def _quiet(_: str) -> None:
    """Progress notes are for a terminal; the server has none."""


def admin_router(store: Store, lock: threading.Lock, token: str) -> APIRouter:
    """The admin endpoints over ``store``, whose every use goes through ``lock``."""
    router = APIRouter(
        prefix="/v1/admin",
        tags=["admin"],
        dependencies=[Depends(bearer_guard(token, "AdminToken"))],
        responses=_RESPONSES,
    )
    where = os.path.realpath(store.where)

    def perform(task: Task[Request, Result], request: Request) -> Result:
        try:
            return task.work(store, request, _quiet, lock)
        except (TripwireError, ConfigError) as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc

    @router.get("/store")
    def owner() -> StoreOwner:
        """This process and the store it owns: what a command checks before sending work."""
        return StoreOwner(pid=os.getpid(), store=where, version=__version__)

    for task in tasks.TASKS:
        router.add_api_route(
            f"/{task.name}",
            _endpoint(task, perform),
            methods=["POST"],
            response_model=task.result,
            summary=f"`{task.command}`",
            description=task.request.__doc__ or "",
            name=task.name,
        )
    return router


def _endpoint(
    task: Task[Request, Result], perform: Callable[[Task[Request, Result], Request], Result]
) -> Callable[[Request], Result]:
    """The endpoint of ``task``: its request model as the body, its result as the answer."""

    def endpoint(request: Request) -> Result:
        return perform(task, request)

    # FastAPI reads the body's model from the signature; the task says which it is.
    body = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=task.request
    )
    endpoint.__signature__ = inspect.Signature([body], return_annotation=task.result)  # type: ignore[attr-defined]
    return endpoint
