"""The request-body limit of the annotation app, enforced while the body is read.

`BodyLimit` wraps the ASGI `receive` of every request: a declared Content-Length over the limit is
refused at the first read, before any body byte is taken, and the bytes are counted as they arrive,
so a chunked body (or one whose Content-Length lies) stops at the limit too. Nothing reads a body
on its own: a route reads it only after checking who is asking (`state.page_form`,
`api.submit_body`), so a stranger's body is never read at all. A response sent while the request's
body is still coming (401, 413, a refused cross-site post) says `Connection: close`, so the server
closes the connection instead of reading and discarding the rest (uvicorn would drain it all):
memory and time stay flat whatever is sent.
"""
from __future__ import annotations

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class BodyTooLarge(HTTPException):
    """A request body over the limit: the app answers 413 with this message."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body is over the app's limit of {max_bytes} bytes "
                              f"({max_bytes / 2**20:g} MiB); send less")


class BodyLimit:
    """ASGI middleware: raise `BodyTooLarge` from `receive` once a body passes `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        if max_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {max_bytes}")
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        seen = 0
        unread = has_body(scope, declared)

        async def limited() -> Message:
            nonlocal seen, unread
            if declared is not None and declared > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
                unread = message.get("more_body", False)
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and unread:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, limited, closing)


def has_body(scope: Scope, declared: int | None) -> bool:
    """Whether the request announces a body (a Content-Length over 0, or chunked)."""
    if declared is not None:
        return declared > 0
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when it has none (chunked) or an unreadable one
    (then the bytes counted decide)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
