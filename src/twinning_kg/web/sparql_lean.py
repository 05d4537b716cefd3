"""The hot path: `GET /sparql?query=…` answered without the general middleware stack.

Point lookups spend most of their time in the front process, and most of that went to
layers a query GET does not need (ten ASGI wrappers, each with its own `send` closure,
Starlette's Request and Response objects). This path does the same work for the
requests it takes, in one function, with everything that protects the server kept:

- the security headers (`web.security_headers.HEADERS`) on every answer, and the `Vary`
  the general stack sends (`Origin` included: its CORS layer varies by it);
- the release check (503 with Retry-After while the release is switching);
- the access log line, in the same format as `middleware.AccessLog`;
- gzip when `Accept-Encoding` allows it, with the general stack's rule and bytes
  (`web.compression`: bodies of 500 bytes and more, `Vary: Accept-Encoding` on those);
- validators: ETag (release + query + format, `web.result_cache`) and Last-Modified from
  the release; 304 on If-None-Match / If-Modified-Since;
- the answer itself from `views.sparql.answer`: the result cache, then the engine, whose
  admission (429 with Retry-After), guard, time limit and row cap are untouched.

It takes only a plain GET (or HEAD: uvicorn leaves the body out) of `/sparql` whose
query string carries a query, from a client that sent no Origin (CORS is the general
stack's), no body, and (with `--allowed-host`) a Host the server answers for.
Everything else, including any request it is unsure of, goes through the general stack
(`web.app`), which answers it as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import parsedate_to_datetime

from starlette.types import ASGIApp, Receive, Scope, Send

from twinning_kg.web.compression import GZIP_MIN, GZIP_THREAD_MIN, accepts_gzip, gzip_body
from twinning_kg.web.context import AppContext
from twinning_kg.web.middleware import log_access
from twinning_kg.web.security_headers import HEADERS
from twinning_kg.web.views.sparql import (
    Answered,
    ProtocolError,
    _decode_form,
    answer,
    error_response,
    query_request,
)

log = logging.getLogger("twinning_kg.sparql")
PATHS = frozenset({"/sparql", "/sparql/"})
_KEEP_ON_304 = (b"etag", b"last-modified", b"vary", b"cache-control", b"x-cache")
# headers whose presence sends a GET down the general path
_GENERAL = frozenset({b"origin", b"content-length", b"transfer-encoding"})


class LeanSparql:
    """ASGI app in front of the general one; see the module docstring for what it takes."""

    def __init__(self, general: ASGIApp, ctx: AppContext) -> None:
        self.general = general
        self.ctx = ctx
        settings = ctx.settings
        self.max_url = settings.url_limit
        self.allowed_hosts = tuple(h.lower() for h in settings.allowed_hosts)
        self._release_path = None
        self._last_modified: bytes | None = None

    def _host_allowed(self, host: bytes) -> bool:
        """Starlette's TrustedHostMiddleware rule: exact, `*`, or `*.suffix`."""
        name = host.decode("latin-1").split(":")[0].lower()
        for pattern in self.allowed_hosts:
            if pattern == "*" or name == pattern or (pattern.startswith("*") and name.endswith(pattern[1:])):
                return True
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or scope["path"] not in PATHS
            or b"query=" not in scope.get("query_string", b"")
        ):
            await self.general(scope, receive, send)
            return
        query_string: bytes = scope["query_string"]
        if len(scope.get("raw_path") or b"") + len(query_string) + 1 > self.max_url:
            await self.general(scope, receive, send)  # 414, in the general stack's words
            return
        accept = accept_encoding = inm = ims = host = None
        for name, value in scope["headers"]:
            if name in _GENERAL:
                await self.general(scope, receive, send)
                return
            if name == b"accept":
                accept = value
            elif name == b"accept-encoding":
                accept_encoding = value
            elif name == b"if-none-match":
                inm = value
            elif name == b"if-modified-since":
                ims = value
            elif name == b"host":
                host = value
        if self.allowed_hosts and (host is None or not self._host_allowed(host)):
            await self.general(scope, receive, send)  # 400, in the general stack's words
            return
        started = time.perf_counter()
        try:
            status, headers, body = await self._respond(
                scope, query_string, accept, accept_encoding, inm, ims
            )
        except Exception:  # a bug of ours: a plain 500 with our headers, as the general stack answers
            log.exception("GET /sparql failed unexpectedly")
            status, headers, body = _plain(500, "500 Internal Server Error")
        await send({"type": "http.response.start", "status": status, "headers": _vary_origin(headers)})
        await send({"type": "http.response.body", "body": body})
        log_access(scope, status, len(body), started)

    async def _respond(
        self,
        scope: Scope,
        query_string: bytes,
        accept: bytes | None,
        accept_encoding: bytes | None,
        inm: bytes | None,
        ims: bytes | None,
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        ctx = self.ctx
        check = ctx.release_problem
        problem = check() if check is not None else None
        if problem is not None:
            return _plain(
                503,
                f"503 Service Unavailable: {problem}",
                (b"retry-after", b"5"),
                (b"cache-control", b"no-store"),
            )
        try:
            params = _decode_form(query_string, "query string")
            client = (scope.get("client") or ("-", 0))[0]
            query = query_request(ctx, params, accept.decode("latin-1") if accept else None, client)
        except ProtocolError as exc:
            return _starlette(error_response(exc.status, exc.message))
        if query is None:  # e.g. `?query=` as part of another parameter's value: the general path
            return _starlette(error_response(400, "no query: send it as the 'query' parameter"))
        done = await answer(ctx, query)
        if done.cache is None:  # an error
            return _encoded(done, None, None)
        return await self._validated(done, accept_encoding, inm, ims)

    async def _validated(
        self, done: Answered, accept_encoding: bytes | None, inm: bytes | None, ims: bytes | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body, encoding = done.body, None
        etag = done.etag
        varies = len(body) >= GZIP_MIN  # the general stack's gzip says so, encoded or not
        if varies and accepts_gzip(accept_encoding):
            encoding = b"gzip"
            if etag is not None:  # another representation, another strong validator
                etag = etag[:-1] + '-gzip"'
        last_modified = None if done.no_store else self._release_last_modified()
        if etag is not None and _not_modified(inm, ims, etag, last_modified):
            _status, headers, _out = _encoded(done, b"", encoding, etag, last_modified, varies)
            kept = [(k, v) for k, v in headers if k in _KEEP_ON_304 or (k, v) in HEADERS]
            return 304, kept, b""
        if encoding is not None:
            body = await self._gzipped(done)
        return _encoded(done, body, encoding, etag, last_modified, varies)

    async def _gzipped(self, done: Answered) -> bytes:
        """The answer's gzip form: kept by the result cache, else made (large bodies in a
        thread, as the general stack's gzip does, so the event loop keeps serving)."""
        cache, entry = self.ctx.results, done.entry
        form = entry.gzip_form if entry is not None else None
        if form is None:
            if len(done.body) < GZIP_THREAD_MIN:
                form = gzip_body(done.body)
            else:
                form = await asyncio.get_running_loop().run_in_executor(None, gzip_body, done.body)
            if entry is not None:
                cache.keep_gzip(entry, form)
        return form

    def _release_last_modified(self) -> bytes | None:
        release = self.ctx.release
        if release.path != self._release_path:
            try:
                self._last_modified = release.last_modified.encode("latin-1")
            except OSError:
                self._last_modified = None
            self._release_path = release.path
        return self._last_modified


def _encoded(
    done: Answered,
    body: bytes | None,
    encoding: bytes | None,
    etag: str | None = None,
    last_modified: bytes | None = None,
    vary_encoding: bool = False,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = done.body if body is None else body
    headers = [
        (b"content-type", done.media_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
    ]
    for name, value in done.headers().items():
        if name == "ETag":
            continue
        if name == "Vary" and vary_encoding:
            value += ", Accept-Encoding"
        headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    if encoding is not None:
        headers.append((b"content-encoding", encoding))
    if etag is not None:
        headers.append((b"etag", etag.encode("latin-1")))
    if last_modified is not None:
        headers.append((b"last-modified", last_modified))
    headers.extend(HEADERS)
    return done.status, headers, body


def _not_modified(inm: bytes | None, ims: bytes | None, etag: str, last_modified: bytes | None) -> bool:
    """RFC 9110 §13.1.2/§13.1.3: If-None-Match (weak comparison) wins over If-Modified-Since."""
    if inm is not None:
        wanted = etag.removeprefix("W/")
        for token in inm.decode("latin-1").split(","):
            token = token.strip()
            if token == "*" or token.removeprefix("W/") == wanted:
                return True
        return False
    if ims is not None and last_modified is not None:
        try:
            return parsedate_to_datetime(last_modified.decode("latin-1")) <= parsedate_to_datetime(
                ims.decode("latin-1")
            )
        except (TypeError, ValueError):
            return False
    return False


def _vary_origin(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """`Vary: …, Origin`, as the general stack's CORS layer says on every answer: a request
    with Origin gets `Access-Control-Allow-Origin` there, so a shared cache must not hand
    this answer, which has none, to a browser's cross-origin request."""
    for index, (name, value) in enumerate(headers):
        if name == b"vary":
            headers[index] = (name, value + b", Origin")
            return headers
    headers.append((b"vary", b"Origin"))
    return headers


def _plain(
    status: int, text: str, *extra: tuple[bytes, bytes]
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = (text.rstrip() + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
        *HEADERS,
    ]
    return status, headers, body


def _starlette(response: object) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A Starlette Response's status, headers (with ours) and body."""
    headers = [*response.raw_headers, *HEADERS]  # type: ignore[attr-defined]
    return response.status_code, headers, response.body  # type: ignore[attr-defined]
