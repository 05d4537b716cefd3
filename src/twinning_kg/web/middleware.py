"""Cross-cutting HTTP behaviour for every route: access log, hosts, request size, CORS, caching, gzip.

Written as plain ASGI middleware (no per-request task or body copy, unlike Starlette's
`BaseHTTPMiddleware`), outermost first (`web.security_headers` wraps all of them, and the
HTTP protocol below them has its own limits: `web.protocol`):

1. `AccessLog`: one line per request (client, request line, status, bytes, time).
2. Starlette's `TrustedHostMiddleware` when `--allowed-host` is given: other Hosts get 400.
   Starlette's `CORSMiddleware`: any origin may GET/POST, never with credentials.
   `NoHostInLocation`: no redirect points at the Host header the client sent.
3. `UrlLengthLimit` and `BodyLimit`: request targets over `settings.url_limit` -> 414
   (the HTTP protocol refuses them first on the real server: `web.protocol`), bodies over
   `settings.max_request_bytes` -> 413, the same plain-text answer whether the size is
   announced (Content-Length, refused before the app runs) or found while reading a
   chunked body.
4. `ReleaseCheck`: 503 with the reason while the served release is unavailable.
   `ConditionalGet`: ETag tied to the release version (plus the representation when the
   response is negotiated, RFC 9110 §8.8.3, and `-gzip` when compressed) and
   Last-Modified from the release; 304 on If-None-Match / If-Modified-Since.
5. `HeadLikeGet`, then `GZip` (`web.compression`): gzip when `Accept-Encoding` allows it,
   and HEAD answered with the header fields GET sends.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from twinning_kg.config import Settings
from twinning_kg.release.reader import Release
from twinning_kg.web.compression import GZip, HeadLikeGet
from twinning_kg.web.context import AppContext
from twinning_kg.web.protocol import url_too_long_message

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


def install(app: Any, settings: Settings, ctx: AppContext) -> None:
    """Add the stack to a Starlette/FastAPI app (the last added runs outermost)."""
    app.add_middleware(GZip)
    app.add_middleware(HeadLikeGet)  # just outside gzip: HEAD gets GET's header fields
    app.add_middleware(ConditionalGet, current=lambda: ctx.release)
    app.add_middleware(ReleaseCheck, ctx=ctx)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(UrlLengthLimit, max_bytes=settings.url_limit)
    app.add_middleware(NoHostInLocation, public_base=settings.public_base)
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
    if settings.allowed_hosts:  # a Host we do not serve: 400 (DNS rebinding, misrouted requests)
        app.add_middleware(
            TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts), www_redirect=False
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
            log_access(scope, state["status"] or "-", state["bytes"], start)


def log_access(scope: Scope, status: int | str, size: int, started: float) -> None:
    """One access log line (client, request line, status, bytes, milliseconds): the stack's
    and the lean /sparql path's lines are the same."""
    if not access_log.isEnabledFor(logging.INFO):
        return
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
        status,
        size,
        (time.perf_counter() - started) * 1000,
    )


def _plain(status: int, text: str, *, close: bool = False) -> tuple[Message, Message]:
    """The two ASGI messages of a plain-text response."""
    body = (text.rstrip() + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if close:  # the client may still be sending a body we will not read
        headers.append((b"connection", b"close"))
    return (
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class UrlLengthLimit:
    """414 for a request target (path and query) over the limit, with the protocol's message."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope.get("raw_path") or scope["path"].encode()
            query = scope.get("query_string", b"")
            if len(path) + (len(query) + 1 if query else 0) > self.max_bytes:
                for message in _plain(414, url_too_long_message(self.max_bytes)):
                    await send(message)
                return
        await self.app(scope, receive, send)


class NoHostInLocation:
    """Never send a Location built from the client's Host header.

    Our own redirects are relative (or under the configured `--base-url`); this catches the
    ones libraries build from the request URL, such as Starlette's trailing-slash redirect
    (`/catalog/` -> `http://{Host}/catalog`): a Location naming the Host the client sent is
    made relative, so `Host: evil.example` can never steer a client there (RFC 9110 §10.2.2
    allows a relative Location); so is one naming the socket's own address, which Starlette
    uses when the Host header is not a plain host name.
    """

    def __init__(self, app: ASGIApp, public_base: str) -> None:
        self.app = app
        self.public_base = public_base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ours = {_headers(scope).get(b"host", b"").decode("latin-1").lower()}
        server = scope.get("server")
        if server and server[1] is not None:  # the socket's address, as Starlette falls back to
            ours.add(f"{server[0]}:{server[1]}".lower())

        async def checked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, self._relative(v, ours) if k.lower() == b"location" else v)
                    for k, v in message.get("headers", [])
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, checked_send)

    def _relative(self, location: bytes, ours: set[str]) -> bytes:
        text = location.decode("latin-1")
        if text.startswith(self.public_base):
            return location  # configured, not taken from the request
        parts = urlsplit(text)
        if parts.scheme or parts.netloc:
            if parts.netloc.lower() not in ours and parts.netloc:
                return location  # somewhere else on purpose (e.g. a source's URL)
            # scheme-relative or our own authority as the client named it: keep the path only
            return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment)).encode("latin-1")
        return location


class _BodyTooLarge(Exception):
    """Raised from `receive` inside the app once the body passes the limit."""


def body_too_large_message(limit: int) -> str:
    return f"413 Content Too Large: the request body is larger than this server's limit of {limit} bytes"


class BodyLimit:
    """413 for a request body over the limit, one answer for both ways of sending it.

    A Content-Length over the limit is refused before the app runs. A chunked body (no
    length announced) is counted as it arrives; once it passes the limit, the app's next
    `receive` raises, whatever the app does with that (even if it catches it and answers
    something else) the client gets the same plain-text 413, and the connection is closed
    so the rest of the body is not read. Starlette's RequestBodyLimitMiddleware answered
    the second case with FastAPI's JSON error instead.

    A client that disconnects while its body is read (or whose body missed the protocol's
    deadline) is gone: nothing is answered and no traceback is logged.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _headers(scope).get(b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_bytes:
            for message in _plain(413, body_too_large_message(self.max_bytes), close=True):
                await send(message)
            return
        state = {"received": 0, "too_large": False, "started": False}

        async def counted_receive() -> Message:
            if state["too_large"]:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > self.max_bytes:
                    state["too_large"] = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["too_large"]:
                return  # the app's own answer to the oversized body is replaced by ours
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            pass
        except ClientDisconnect:
            if state["started"]:
                raise
            access_log.debug("client went away while sending its request body")
            return
        if state["too_large"] and not state["started"]:
            for message in _plain(413, body_too_large_message(self.max_bytes), close=True):
                await send(message)


class ReleaseCheck:
    """503 with the reason while the served release is unavailable (`AppContext.release_problem`).

    The server's `ReleaseKeeper` sets the check: the release directory vanished (deleted by
    hand; builds never prune a leased one) and the server is switching to the current
    release of `--graph`, or there is none to switch to. Without a keeper every request passes.
    """

    def __init__(self, app: ASGIApp, ctx: AppContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        check = self.ctx.release_problem
        problem = check() if scope["type"] == "http" and check is not None else None
        if problem is None:
            await self.app(scope, receive, send)
            return
        start, body = _plain(503, f"503 Service Unavailable: {problem}")
        start["headers"].append((b"retry-after", b"5"))
        start["headers"].append((b"cache-control", b"no-store"))
        await send(start)
        await send(body)


def _gzip_tagged(
    headers: list[tuple[bytes, bytes]], index: dict[bytes, bytes], etag: str
) -> tuple[list[tuple[bytes, bytes]], str]:
    """A gzip-coded answer's strong ETag, `-gzip` appended: one strong validator names one
    sequence of bytes (RFC 9110 §8.8.3), and the unencoded answer has the plain one."""
    if (
        index.get(b"content-encoding", b"").lower() == b"gzip"
        and not etag.startswith("W/")
        and not etag.endswith('-gzip"')
    ):
        etag = etag[:-1] + '-gzip"'
        headers = [(k, etag.encode() if k.lower() == b"etag" else v) for k, v in headers]
    return headers, etag


def _gzip_validator(send: Send) -> Send:
    """`send`, with `_gzip_tagged` applied to an answer that carries an ETag."""

    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            index = {k.lower(): v for k, v in headers}
            if b"etag" in index:
                headers, _etag = _gzip_tagged(headers, index, index[b"etag"].decode("latin-1"))
                message = {**message, "headers": headers}
        await send(message)

    return tagged


class ConditionalGet:
    def __init__(self, app: ASGIApp, current: Callable[[], Release]) -> None:
        self.app = app
        self.current = current
        self._for: Path | None = None  # the release the cached validators below belong to
        self.version_tag = ""
        self.last_modified: str | None = None

    def _validators(self) -> None:
        """ETag base and Last-Modified of the release being served (it may be switched)."""
        release = self.current()
        if release.path == self._for:
            return
        self.version_tag = release.etag.strip('"')
        try:
            self.last_modified = release.last_modified
        except OSError:
            self.last_modified = None
        self._for = release.path

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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, _gzip_validator(send))  # a POST's answer: no 304, same tags
            return
        self._validators()
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
                headers, etag = _gzip_tagged(headers, index, etag)
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
