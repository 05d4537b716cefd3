"""The egress proxy: the only way out of a query worker, and only to allow-listed URLs.

Query workers live in network namespaces without a route anywhere (see `sandbox`).
A SERVICE clause accepted by the guard is rewritten to `sandbox.relay_url(i)`; the
relay inside the worker's namespace pipes the connection to this proxy's Unix socket,
and the proxy, in the server process, makes the call itself:

- to exactly `allowlist[i]` (plus the query string the worker sent; nothing else of
  the request line is used), by GET or POST, with the worker's body, Content-Type
  and Accept, and nothing else from the worker's headers;
- with the query time limit for the whole exchange, and at most `max_bytes` of answer;
- without following redirects (a 3xx is reported as a failure naming the target: an
  operator who wants that URL lists it);
- answering 4xx/5xx itself when anything is wrong, which the worker reports as a
  failing federated service (424).

HTTP on the Unix socket is read with h11 (uvicorn's parser) on an asyncio loop of its
own in a daemon thread, so the proxy neither waits for nor slows the web server's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import time

import h11
import httpx

log = logging.getLogger("twinning_kg.egress")

_TARGET = re.compile(rb"^/(\d{1,4})(?:\?(.*))?$", re.DOTALL)
_FORWARDED = (b"content-type", b"accept")


class EgressProxy:
    """Serve the workers' relays on a Unix socket; call only `allowlist` URLs (see module)."""

    def __init__(
        self,
        allowlist: tuple[str, ...],
        *,
        timeout: float,
        max_bytes: int,
        max_request_bytes: int,
        user_agent: str = "twinning-kg (federated query)",
    ) -> None:
        self.allowlist = tuple(allowlist)
        self.timeout = float(timeout)
        self.max_bytes = int(max_bytes)
        self.max_request_bytes = int(max_request_bytes)
        self.user_agent = user_agent
        self.directory = tempfile.mkdtemp(prefix="twinning-kg-egress-")  # mode 0700
        self.path = os.path.join(self.directory, "egress.sock")
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        self._sock.listen(64)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="egress-proxy", daemon=True)
        self._thread.start()
        self._started.wait(10)

    # -- life cycle

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=8)
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, limits=limits, timeout=self.timeout
        ) as client:
            self._client = client
            server = await asyncio.start_unix_server(self._handle, sock=self._sock)
            self._started.set()
            async with server:
                await self._stop.wait()

    def close(self) -> None:
        """Stop serving and remove the socket (idempotent)."""
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(5)
            self._loop = None
        with contextlib.suppress(OSError):
            self._sock.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- one request per connection

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=65536)
        started = time.monotonic()
        try:
            status, content_type, body, note = await asyncio.wait_for(
                self._exchange(conn, reader), self.timeout
            )
        except TimeoutError:
            status, content_type, body, note = 504, "text/plain", b"", "time limit"
            body = f"the service did not answer within {self.timeout:g} s\n".encode()
        except Exception as exc:  # noqa: BLE001 - every failure is an answer to the worker
            status, content_type, note = 502, "text/plain", type(exc).__name__
            body = f"egress proxy: {exc}\n".encode()
        if status >= 400:
            reason = body[:200].decode(errors="replace").strip()
            log.warning("egress refused or failed: %s (%d: %s)", note, status, reason)
        else:
            elapsed = 1000 * (time.monotonic() - started)
            log.info("egress: %s -> %d, %d bytes, %.0f ms", note, status, len(body), elapsed)
        with contextlib.suppress(Exception):
            headers = [
                ("Content-Type", content_type),
                ("Content-Length", str(len(body))),
                ("Connection", "close"),
            ]
            writer.write(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
            writer.write(conn.send(h11.Data(data=body)) or b"")
            writer.write(conn.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()

    async def _exchange(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> tuple[int, str, bytes, str]:
        request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    raise ConnectionError("the worker closed the connection mid-request")
                continue
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_request_bytes:
                    return 413, "text/plain", b"the federated sub-query is too large\n", "request too large"
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the worker closed the connection mid-request")
        assert request is not None
        match = _TARGET.match(request.target)
        index = int(match.group(1)) if match else -1
        if not 0 <= index < len(self.allowlist):
            return 404, "text/plain", b"no such service\n", f"unknown target {request.target[:80]!r}"
        if request.method not in (b"GET", b"POST"):
            return 405, "text/plain", b"only GET and POST\n", f"method {request.method!r}"
        url = self.allowlist[index]
        query = match.group(2) if match else None
        if query:
            url += ("&" if "?" in url else "?") + query.decode("ascii", "replace")
        headers = {"User-Agent": self.user_agent}
        for name, value in request.headers:
            if name.lower() in _FORWARDED:
                headers[name.decode("latin-1")] = value.decode("latin-1")
        note = f"{request.method.decode()} {self.allowlist[index]}"
        assert self._client is not None
        outgoing = self._client.build_request(
            request.method.decode(), url, content=bytes(body), headers=headers
        )
        response = await self._client.send(outgoing, stream=True)
        try:
            if response.is_redirect:
                location = response.headers.get("location", "?")
                message = (
                    f"{self.allowlist[index]} redirected to {location}, which is not followed: "
                    "only allow-listed URLs are called\n"
                )
                return 502, "text/plain", message.encode(), note + " (redirect refused)"
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():  # decoded: the cap counts what is kept
                size += len(chunk)
                if size > self.max_bytes:
                    message = f"the answer of {self.allowlist[index]} exceeds {self.max_bytes} bytes\n"
                    return 502, "text/plain", message.encode(), note + " (answer too large)"
                chunks.append(chunk)
            content_type = response.headers.get("content-type", "application/octet-stream")
            return response.status_code, content_type, b"".join(chunks), note
        finally:
            await response.aclose()
