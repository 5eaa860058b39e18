"""Signing in to the dashboard with the read token.

A browser cannot send a bearer header, so the dashboard takes the read token once, from a small
form (``/dashboard/login``) or a ``?token=`` on any page's address, and answers with a cookie.
The cookie does not hold the token: it holds an HMAC of a fixed text keyed by the token, so it
opens the dashboard's pages but not the API, and stops working when the token changes. It is
``HttpOnly`` (no script reads it), ``SameSite=Lax`` and ``Secure`` when the page came over
HTTPS. An address with ``?token=`` is answered with a redirect to the same page without it, so
the token does not stay in the address bar or the history.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse

__all__ = ["COOKIE", "Session", "safe_next"]

COOKIE = "tripwire_dashboard"
_PURPOSE = b"tripwire dashboard session v1"
MAX_AGE = 7 * 24 * 3600


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a dashboard path, never another site."""
    if target and target.startswith("/dashboard") and not target.startswith("//"):
        return target
    return "/dashboard"


class Session:
    """Checks and grants the dashboard cookie for ``read_token`` (None: the dashboard is open,
    as the API is under ``tripwire serve --insecure``)."""

    def __init__(self, read_token: str | None) -> None:
        self.token = read_token
        self._value = (
            hmac.new(read_token.encode(), _PURPOSE, hashlib.sha256).hexdigest()
            if read_token is not None
            else None
        )

    @property
    def open(self) -> bool:
        return self._value is None

    def valid_token(self, given: str | None) -> bool:
        if self.token is None:
            return True
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def signed_in(self, request: Request) -> bool:
        if self._value is None:
            return True
        given = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(given.encode(), self._value.encode())

    def grant(self, response: RedirectResponse, request: Request) -> RedirectResponse:
        if self._value is not None:
            response.set_cookie(
                COOKIE,
                self._value,
                max_age=MAX_AGE,
                path="/dashboard",
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
            )
        return response

    def without_token(self, request: Request) -> str:
        """The request's path and query without ``token``."""
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        return request.url.path + (f"?{urlencode(query)}" if query else "")


def form_fields(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body's fields (the first of each)."""
    parsed = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}
