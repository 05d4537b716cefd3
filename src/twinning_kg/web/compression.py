"""gzip by one rule for every response, and HEAD answered with the header fields GET sends.

- `accepts_gzip`: `Accept-Encoding` read as RFC 9110 §12.5.3 says (`query.negotiation`):
  `gzip;q=0` refuses gzip, `*` allows it, `x-gzip` is gzip. Starlette's own middleware
  looks for the substring "gzip", so `gzip;q=0` got gzip.
- `GZip`: Starlette's GZipMiddleware deciding by that rule, at our level.
- `gzip_body`: the one-shot compression of the lean SPARQL path (`web.sparql_lean`). It is
  the very call GZip makes for a body sent in one message, so a query answered by either
  path is the same bytes under the same strong ETag (RFC 9110 §8.8.3).
- `HeadLikeGet`: a HEAD runs as a GET below it and stops at the first body message.
  Starlette's file responses send no body to a HEAD, and the gzip layer, which decides
  from the body, then left it unencoded: HEAD said `Content-Length: <raw size>`, no
  `Content-Encoding`, no `Vary` and another ETag, where the GET was gzip (RFC 9110 §9.3.2
  wants the same header fields). Stopping after the head keeps a HEAD of a large file to
  one chunk of work.
"""

from __future__ import annotations

import zlib

from starlette.datastructures import Headers
from starlette.middleware.gzip import (
    DEFAULT_EXCLUDED_CONTENT_TYPES,
    GZipMiddleware,
    GZipResponder,
    IdentityResponder,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twinning_kg.query.negotiation import accepts_coding

GZIP_MIN = 500  # bytes: smaller bodies go as they are
GZIP_LEVEL = 6  # zlib's default: level 9 costs about twice the CPU for 1-3 % fewer bytes here
GZIP_THREAD_MIN = 128 * 1024  # bodies this large are compressed off the event loop


def accepts_gzip(header: bytes | str | None) -> bool:
    """Whether the request's `Accept-Encoding` value allows gzip."""
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    return accepts_coding(header, "gzip")


def compressible(media_type: str | None) -> bool:
    """Whether the gzip layer compresses a response of this Content-Type (not images,
    archives, audio or video: Starlette's list, which `GZip` uses)."""
    media = (media_type or "").partition(";")[0].strip().lower()
    return not {media, media.partition("/")[0] + "/*"} & _EXCLUDED


_EXCLUDED = frozenset(DEFAULT_EXCLUDED_CONTENT_TYPES)


def gzip_body(body: bytes) -> bytes:
    """`body` gzipped exactly as `GZip` sends a body that comes in one message."""
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(body) + compressor.flush()


class GZip(GZipMiddleware):
    """Starlette's gzip layer, choosing by `accepts_gzip` (its own check reads substrings)."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(
            app, minimum_size=GZIP_MIN, compresslevel=GZIP_LEVEL, thread_minimum_size=GZIP_THREAD_MIN
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        responder: ASGIApp
        if accepts_gzip(Headers(scope=scope).get("accept-encoding")):
            responder = GZipResponder(
                self.app,
                self.minimum_size,
                compresslevel=self.compresslevel,
                thread_minimum_size=self.thread_minimum_size,
                exclude_content_types=self.exclude_content_types,
            )
        else:
            responder = IdentityResponder(
                self.app, self.minimum_size, exclude_content_types=self.exclude_content_types
            )
        await responder(scope, receive, send)


class _HeadSent(Exception):
    """The head of a HEAD answer has left; the rest of the GET is not made."""


class HeadLikeGet:
    """Answer HEAD with what GET would send, minus the body (RFC 9110 §9.3.2)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def head_only(message: Message) -> None:
            if message["type"] == "http.response.start":
                await send(message)
            elif message["type"] == "http.response.body":
                await send({"type": "http.response.body", "body": b""})
                raise _HeadSent

        try:
            await self.app({**scope, "method": "GET"}, receive, head_only)
        except* _HeadSent:
            pass
