"""Bearer tokens: one for sending data (ingest), one for reading what the collector holds."""

# No ``from __future__ import annotations``: FastAPI reads the guard's signature at runtime, and
# it refers to a local (the HTTPBearer instance) that a string annotation could not resolve.

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

Guard = Callable[[HTTPAuthorizationCredentials | None], Awaitable[None]]


def bearer_guard(token: str | None, scheme_name: str) -> Guard:
    """A dependency that lets a request through only with ``Authorization: Bearer <token>``.

    ``token=None`` lets every request through: the caller decides whether that is allowed
    (``tripwire serve`` requires ``--insecure`` for it).
    """
    expected = token.encode() if token is not None else None
    # auto_error=False: a missing header is answered 401 here, like a wrong token, rather than
    # 403; HTTPBearer still declares the scheme in the OpenAPI spec.
    bearer = HTTPBearer(auto_error=False, scheme_name=scheme_name)

    # async, though it awaits nothing: FastAPI runs a plain function in its thread pool, and
    # the hop there and back cost the collector more than the check itself, on every batch.
    async def guard(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        if expected is None:
            return
        given = credentials.credentials.encode() if credentials is not None else b""
        # compare_digest takes as long whatever the given token, so timing reveals nothing.
        if not hmac.compare_digest(given, expected):
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail=f"missing or wrong bearer token ({scheme_name})",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return guard
