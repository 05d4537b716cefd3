"""Cross-cutting HTTP behaviour for every route: access log, request size, CORS, caching, gzip.

Written as plain ASGI middleware (no per-request task or body copy, unlike Starlette's
`BaseHTTPMiddleware`), outermost first:

1. `AccessLog`: one line per request (client, request line, status, bytes, time).
2. Starlette's `CORSMiddleware`: any origin may GET/POST, never with credentials.
3. `UrlLengthLimit` and Starlette's `RequestBodyLimitMiddleware`: query strings over
   `settings.max_request_bytes` -> 414, bodies over it -> 413 (refused on the
   Content-Length, or as soon as the received bytes pass the limit).
4. `ConditionalGet`: ETag tied to the release version (plus the representation when the
   response is negotiated, RFC 9110 §8.8.3, and `-gzip` when compressed) and
   Last-Modified from the release; 304 on If-None-Match / If-Modified-Since.
5. Starlette's `GZipMiddleware`: gzip when the client asks (`Accept-Encoding`).
"""

from __future__ import annotations

import logging
import time
import zlib
from email.utils import parsedate_to_datetime
from typing import Any

from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twinning_kg.config import Settings
from twinning_kg.release import Release

access_log = logging.getLogger("twinning_kg.access")

# Headers a 304 keeps (RFC 9110 §15.4.5); the body and its descriptors go.
_KEEP_ON_304 = {
    b"etag",
    b"last-modified",
    b"vary",
    b"cache-control",
    b"content-location",
    b"expires",
    b"date",
}


def install(app: Any, settings: Settings, release: Release) -> None:
    """Add the stack to a Starlette/FastAPI app (the last added runs outermost)."""
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(ConditionalGet, release=release)
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_request_bytes)
    app.add_middleware(UrlLengthLimit, max_bytes=settings.max_request_bytes)
    # Outside the limits, so browsers can read a 413/414 too.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["*"],
        allow_credentials=False,
        expose_headers=["ETag", "Last-Modified", "Content-Length"],
        max_age=86400,
    )
    app.add_middleware(AccessLog)


def _headers(scope_or_message: dict[str, Any]) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope_or_message.get("headers", [])}


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 0, "bytes": 0}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
            if scope.get("query_string"):
                target += "?" + scope["query_string"].decode("latin-1")
            if len(target) > 300:
                target = target[:300] + "..."
            client = scope.get("client") or ("-", 0)
            access_log.info(
                '%s "%s %s HTTP/%s" %s %dB %.1fms',
                client[0],
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                state["status"] or "-",
                state["bytes"],
                (time.perf_counter() - start) * 1000,
            )


class UrlLengthLimit:
    """414 for a query string over the limit (bodies are Starlette's RequestBodyLimitMiddleware's)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope.get("query_string", b"")) > self.max_bytes:
            body = (
                f"the URL is longer than this server's limit of {self.max_bytes} bytes; use POST\n".encode()
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 414,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class ConditionalGet:
    def __init__(self, app: ASGIApp, release: Release) -> None:
        self.app = app
        self.release = release
        self.version_tag = release.etag.strip('"')
        try:
            self.last_modified = release.last_modified
            self.last_modified_ts = parsedate_to_datetime(self.last_modified).timestamp()
        except OSError:
            self.last_modified, self.last_modified_ts = None, None

    def etag_for(self, headers: dict[bytes, bytes]) -> str:
        tag = self.version_tag
        vary = headers.get(b"vary", b"").lower()
        if b"accept" in [v.strip() for v in vary.split(b",")]:
            # Negotiated: each representation (format, language) needs its own strong validator.
            variant = headers.get(b"content-type", b"") + b"|" + headers.get(b"content-language", b"")
            tag += "-" + format(zlib.crc32(variant), "08x")
        return f'"{tag}"'

    def _not_modified(self, request: dict[bytes, bytes], etag: str | None, last_modified: str | None) -> bool:
        inm = request.get(b"if-none-match")
        if inm is not None:
            if etag is None:
                return False
            wanted = etag.removeprefix("W/")
            for token in inm.decode("latin-1").split(","):
                token = token.strip()
                if token == "*" or token.removeprefix("W/") == wanted:
                    return True
            return False
        ims = request.get(b"if-modified-since")
        if ims is not None and last_modified is not None:
            try:
                return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims.decode("latin-1"))
            except (TypeError, ValueError):
                return False
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        request_headers = _headers(scope)
        suppress = False

        async def conditional_send(message: Message) -> None:
            nonlocal suppress
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    await send(message)
                    return
                headers = list(message.get("headers", []))
                index = {k.lower(): v for k, v in headers}
                if b"no-store" in index.get(b"cache-control", b""):
                    await send(message)
                    return
                if b"etag" not in index:
                    etag = self.etag_for(index)
                    headers.append((b"etag", etag.encode()))
                else:
                    etag = index[b"etag"].decode("latin-1")
                if (
                    index.get(b"content-encoding", b"").lower() == b"gzip"
                    and not etag.startswith("W/")
                    and not etag.endswith('-gzip"')
                ):
                    new = etag[:-1] + '-gzip"'
                    headers = [(k, new.encode() if k.lower() == b"etag" else v) for k, v in headers]
                    etag = new
                last_modified = index.get(b"last-modified", b"").decode("latin-1") or self.last_modified
                if b"last-modified" not in index and self.last_modified:
                    headers.append((b"last-modified", self.last_modified.encode()))
                if self._not_modified(request_headers, etag, last_modified):
                    suppress = True
                    kept = [(k, v) for k, v in headers if k.lower() in _KEEP_ON_304]
                    await send({"type": "http.response.start", "status": 304, "headers": kept})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                await send({**message, "headers": headers})
                return
            if suppress:
                return  # the body of a response answered by 304
            await send(message)

        await self.app(scope, receive, conditional_send)
