"""The dashboard: server-rendered pages over the store, served by ``tripwire serve``.

``/dashboard`` shows every model with the state of its four layers and its open incidents;
``/dashboard/models/<model>`` one section per layer and the incidents; ``.../features/<name>``
a feature's drift and histograms; ``.../incidents/<key>`` an incident with its runbook,
evidence and deliveries. Pages are HTML with inline SVG, one style sheet served from here, no
script and nothing fetched from elsewhere. The read token signs a browser in (see
:mod:`.auth`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tripwire.server.dashboard.auth import COOKIE, Session, form_fields, safe_next
from tripwire.server.dashboard.feature import feature_page
from tripwire.server.dashboard.html import CSS, esc, page
from tripwire.server.dashboard.incidents import incident_page
from tripwire.server.dashboard.model import DEFAULT_WINDOWS, model_page
from tripwire.server.dashboard.overview import overview_page
from tripwire.server.reader import NotFoundError, StoreBusyError, StoreReader

__all__ = ["dashboard_router"]

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Windows = Annotated[
    int, Query(ge=1, le=100_000, description="How many of the latest windows to show.")
]


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def _login_form(next_path: str, error: str = "") -> str:
    message = f'<p class="error">{esc(error)}</p>' if error else ""
    return page(
        "Sign in",
        '<form class="login" method="post" action="/dashboard/login">'
        "<h1>Sign in</h1>"
        "<p>The dashboard takes the server's read token (the value of TRIPWIRE_READ_TOKEN, "
        "or the one `tripwire demo --serve` printed).</p>"
        f"{message}"
        '<label for="token">Read token</label>'
        '<input id="token" name="token" type="password" autocomplete="current-password" '
        "required autofocus>"
        f'<input type="hidden" name="next" value="{esc(safe_next(next_path))}">'
        '<button type="submit">Sign in</button></form>',
        signed_in=False,
    )


def dashboard_router(reader: StoreReader, read_token: str | None) -> APIRouter:
    """The dashboard's pages over ``reader``; ``read_token`` None leaves them open."""
    session = Session(read_token)
    router = APIRouter(include_in_schema=False)

    def serve(request: Request, render: Callable[[], str]) -> Response:
        """The page ``render`` draws, once the request is signed in."""
        if "token" in request.query_params:
            if not session.valid_token(request.query_params["token"]):
                return _html(_login_form(session.without_token(request), "Wrong token."), 401)
            redirect = RedirectResponse(session.without_token(request), status_code=303)
            return session.grant(redirect, request)
        if not session.signed_in(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                f"/dashboard/login?next={quote(target, safe='')}", status_code=303, headers=HEADERS
            )
        try:
            return _html(render())
        except NotFoundError as exc:
            return _html(page("Not found", f"<h1>Not found</h1><p>{esc(exc)}</p>"), 404)
        except StoreBusyError as exc:
            return _html(page("Busy", f"<h1>Try again</h1><p>{esc(exc)}</p>"), 503)

    @router.get("/")
    def root() -> RedirectResponse:
        return RedirectResponse("/dashboard", status_code=307)

    @router.get("/dashboard/static/dashboard.css")
    def css() -> Response:
        return Response(
            CSS,
            media_type="text/css",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    @router.get("/dashboard/login")
    def login_form(next: str = "/dashboard") -> Response:
        if session.open:
            return RedirectResponse(safe_next(next), status_code=303)
        return _html(_login_form(next))

    @router.post("/dashboard/login")
    async def login(request: Request) -> Response:
        fields = form_fields(await request.body())
        target = safe_next(fields.get("next"))
        if not session.valid_token(fields.get("token")):
            return _html(_login_form(target, "Wrong token."), 401)
        return session.grant(RedirectResponse(target, status_code=303), request)

    @router.post("/dashboard/logout")
    def logout() -> Response:
        response = RedirectResponse("/dashboard/login", status_code=303)
        response.delete_cookie(COOKIE, path="/dashboard")
        return response

    @router.get("/dashboard")
    async def overview(request: Request) -> Response:
        return await run_in_threadpool(
            serve, request, lambda: overview_page(reader, signed_in=not session.open)
        )

    @router.get("/dashboard/models/{model}")
    async def model(
        request: Request,
        model: str,
        windows: Windows = DEFAULT_WINDOWS,
        features: str | None = None,
    ) -> Response:
        return await run_in_threadpool(
            serve,
            request,
            lambda: model_page(
                reader,
                model,
                windows=windows,
                all_features=features == "all",
                signed_in=not session.open,
            ),
        )

    @router.get("/dashboard/models/{model}/features/{feature}")
    async def feature(
        request: Request,
        model: str,
        feature: str,
        windows: Windows = DEFAULT_WINDOWS,
        segment: str = "all",
    ) -> Response:
        return await run_in_threadpool(
            serve,
            request,
            lambda: feature_page(
                reader,
                model,
                feature,
                windows=windows,
                segment=segment,
                signed_in=not session.open,
            ),
        )

    @router.get("/dashboard/models/{model}/incidents/{key:path}")
    async def incident(request: Request, model: str, key: str) -> Response:
        def render() -> str:
            found = reader.incident(model, key)
            if found is None:
                raise NotFoundError(f"{model} has no incident {key!r}")
            return incident_page(reader, found, signed_in=not session.open)

        return await run_in_threadpool(serve, request, render)

    return router
