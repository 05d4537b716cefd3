"""uvicorn's HTTP/1.1 protocol (httptools) with the limits a public server needs.

uvicorn bounds neither how long a request may take to *arrive* nor how many connections
are open: a client that sends half a request line and then nothing is held forever
(slowloris; about 20,000 of them exhausted the file descriptors), its keep-alive timer
only runs between complete requests, and `limit_concurrency` only answers 503 once a
request's headers are complete, which a slowloris request never is. Nor does it bound
the request head: httptools accumulates a header of any size, and cannot parse a URL
over 65,535 bytes at all (a bare "400 Invalid HTTP request").

`GuardedHttpToolsProtocol` adds, per connection (limits from `Settings`):

- a **header deadline**: the request line and headers must be complete within
  `header_timeout` seconds of the connection (or of a kept-alive request's first byte),
  however slowly they drip in -> 408 and close;
- a **body deadline**: the body within `body_timeout` of the headers -> 408 and close;
- a **send deadline**: a response the client stops reading for `send_timeout` -> close;
- **caps at accept**: more than `max_connections` open -> 503, more than
  `max_connections_per_client` from one address -> 429, both answered and closed at
  once, before the connection can hold anything;
- **size limits on the head**: a request target over `Settings.url_limit` -> 414,
  header lines over `max_header_bytes` -> 431, both as soon as the bytes arrive.

Every refusal is a complete plain-text response with `Connection: close` and the
security headers, and is logged (at most one line per reason every 10 s, with counts,
so an attack cannot flood the log).

**Lingering close.** Closing a socket that still has unread request bytes makes the kernel
send a reset, and a client still busy sending (a long URL, a too-large body) then loses
the 413/414 it was sent. So when a connection is closed in the middle of a request, the
server half-closes it (FIN after the response), discards whatever the client still sends
for at most `LINGER` seconds, and closes then, as nginx's lingering close does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from twinning_kg.config import Settings
from twinning_kg.web.security_headers import HEADERS

log = logging.getLogger("twinning_kg.connections")
LOG_EVERY = 10.0  # seconds between two log lines about refused connections
LINGER = 2.0  # seconds a closing connection keeps discarding what the client still sends
# RFC 9110's names where Python's http module still has RFC 2616's.
REASON_PHRASES = {413: "Content Too Large", 414: "URI Too Long"}


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits one server applies to every connection (see `Settings` for each)."""

    header_timeout: float
    body_timeout: float
    send_timeout: float
    max_connections: int
    max_connections_per_client: int
    max_url_bytes: int
    max_header_bytes: int

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            send_timeout=settings.send_timeout,
            max_connections=settings.max_connections,
            max_connections_per_client=settings.max_connections_per_client,
            max_url_bytes=settings.url_limit,
            max_header_bytes=settings.max_header_bytes,
        )


def url_too_long_message(limit: int) -> str:
    """The 414 text, the same from the protocol and from the in-app check."""
    return (
        f"414 URI Too Long: the request target is longer than this server's limit of {limit} bytes; "
        "send a long SPARQL query with POST (application/sparql-query or a form body)"
    )


def raw_response(status: int, message: str, extra: tuple[tuple[bytes, bytes], ...] = ()) -> bytes:
    """A complete HTTP/1.1 response written straight to the socket (no ASGI app involved)."""
    body = (message.rstrip() + "\n").encode("utf-8")
    phrase = REASON_PHRASES.get(status) or HTTPStatus(status).phrase
    lines = [
        f"HTTP/1.1 {status} {phrase}".encode(),
        b"content-type: text/plain; charset=utf-8",
        b"content-length: " + str(len(body)).encode(),
        b"connection: close",
        *(name + b": " + value for name, value in (*HEADERS, *extra)),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class _RefusalLog:
    """Counts refusals per reason; one log line per `LOG_EVERY` seconds at most."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.last = 0.0

    def add(self, reason: str, client: str) -> None:
        self.counts[reason] += 1
        now = time.monotonic()
        if now - self.last >= LOG_EVERY:
            summary = ", ".join(f"{n} x {r}" for r, n in sorted(self.counts.items()))
            log.warning("refused connections (latest from %s): %s", client, summary)
            self.counts.clear()
            self.last = now


_refusals = _RefusalLog()


def protocol_class(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to give uvicorn (`Config(http=...)`), bound to these limits."""
    return type(
        "GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": ConnectionLimits.of(settings)}
    )


class _LingeringTransport:
    """The socket transport as uvicorn sees it: `close()` lingers (module docstring), and
    the writes of one loop iteration go out as one (a response's head and its body: one
    system call and one TCP segment instead of two, and one wake-up of the client)."""

    def __init__(self, transport: asyncio.Transport, protocol: GuardedHttpToolsProtocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._held: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = [data]
            self._protocol.loop.call_soon(self.flush)
        else:
            self._held.append(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if not held or self._transport.is_closing():
            return
        if len(held) == 1:
            self._transport.write(held[0])
        else:
            self._transport.writelines(held)

    def close(self) -> None:
        self._protocol._close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol with deadlines, connection caps and head size limits (module docstring)."""

    limits: ConnectionLimits = ConnectionLimits.of(Settings())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._send_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True  # between requests or inside a request line / headers
        self._head_bytes = 0  # bytes received while awaiting the head (an upper bound)
        self._header_bytes = 0  # header lines of the current request
        self._pending: tuple[int, str] | None = None  # a refusal decided inside a parser callback
        self._refused = False
        self._socket: asyncio.Transport | None = None  # the real transport under the lingering one
        self._linger_timer: asyncio.TimerHandle | None = None

    # -- connection life cycle

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._socket = transport
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]
        host = self.client[0] if self.client else "-"
        limits = self.limits
        if len(self.connections) > limits.max_connections:
            self._refuse(
                503,
                f"503 Service Unavailable: this server already has {limits.max_connections} open "
                "connections; try again in a moment",
                retry_after=True,
                linger=False,
            )
        elif limits.max_connections_per_client and (
            sum(1 for c in self.connections if c.client and c.client[0] == host)
            > limits.max_connections_per_client
        ):
            self._refuse(
                429,
                f"429 Too Many Requests: at most {limits.max_connections_per_client} open connections "
                "per client address; close some and try again",
                retry_after=True,
                linger=False,
            )
        else:
            self._head_timer = self.loop.call_later(limits.header_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer, self._send_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._send_timer = self._linger_timer = None
        super().connection_lost(exc)

    def eof_received(self) -> bool | None:
        if self._linger_timer is not None:  # the client has sent everything: close now
            assert self._socket is not None
            self._socket.close()
        return None

    def _close(self, linger: bool = True) -> None:
        """Close now when the client is between requests; else linger (module docstring)."""
        assert self._socket is not None
        if isinstance(self.transport, _LingeringTransport):
            self.transport.flush()  # what was written goes out before the FIN
        mid_request = not self._awaiting_head or self._head_bytes > 0
        if self._linger_timer is not None or self._socket.is_closing():
            return
        if not linger or not mid_request or not self._socket.can_write_eof():
            self._socket.close()
            return
        self._refused = True  # whatever still arrives is discarded, never parsed
        with contextlib.suppress(OSError, RuntimeError):
            self._socket.write_eof()  # FIN once the response is written: the client sees its end
            self._socket.resume_reading()
        self._linger_timer = self.loop.call_later(LINGER, self._socket.close)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._refused:
            return
        if self._pending is not None:
            self._refuse(*self._pending)
        elif self._awaiting_head and self._head_bytes > self._max_head_bytes:
            self._refuse(431, self._headers_too_large())  # one endless line never reaches on_header

    @property
    def _max_head_bytes(self) -> int:
        return self.limits.max_url_bytes + self.limits.max_header_bytes + 64  # + method, version

    # -- parser callbacks: measure the head, start and stop the deadlines

    def on_message_begin(self) -> None:
        if self._pending is not None:
            return
        self._awaiting_head = True
        self._header_bytes = 0
        if self._head_timer is None:  # a kept-alive connection's next request: its own deadline
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if self._pending is not None:
            return
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            self._pending = (414, url_too_long_message(self.limits.max_url_bytes))

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._pending is not None:
            return
        self._header_bytes += len(name) + len(value) + 4  # "name: value\r\n"
        if self._header_bytes > self.limits.max_header_bytes:
            self._pending = (431, self._headers_too_large())
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._pending is not None:
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        # A body follows unless the parser says the message is complete already.
        self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if self._pending is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._pending is not None:
            return
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._awaiting_head = True
        super().on_message_complete()

    # -- a client that stops reading the response

    def pause_writing(self) -> None:
        super().pause_writing()
        if self._send_timer is None:
            self._send_timer = self.loop.call_later(self.limits.send_timeout, self._send_timed_out)

    def resume_writing(self) -> None:
        if self._send_timer is not None:
            self._send_timer.cancel()
            self._send_timer = None
        super().resume_writing()

    # -- refusals

    def _headers_too_large(self) -> str:
        return (
            "431 Request Header Fields Too Large: the request head is larger than this server's limit "
            f"of {self.limits.max_header_bytes} bytes of headers"
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._response_in_progress():
            self.transport.close()  # a pipelined request dripping in behind a response
            return
        self._refuse(
            408,
            f"408 Request Timeout: the request line and headers did not arrive within "
            f"{self.limits.header_timeout:g} s",
            linger=False,
        )

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()  # answered already (e.g. 413) while the body still drips in
            return
        self._refuse(
            408,
            f"408 Request Timeout: the request body did not arrive within {self.limits.body_timeout:g} s",
            linger=False,
        )

    def _send_timed_out(self) -> None:
        self._send_timer = None
        _refusals.add("response not read", self.client[0] if self.client else "-")
        self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request httptools cannot parse, with our headers and wording."""
        self._refuse(400, f"400 Bad Request: {msg.rstrip('.')} (not a well-formed HTTP/1.1 request)")

    def _response_in_progress(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _refuse(self, status: int, message: str, *, retry_after: bool = False, linger: bool = True) -> None:
        """Answer `status` with `message`, stop every request on this connection, close it.

        Lingering is for a client that may still be sending (a long URL, a large head); a
        refusal at accept (the caps) or a deadline closes at once: lingering there would
        keep sockets open for exactly the clients the limits are against, and a slow client
        has nothing unread that could turn the close into a reset.
        """
        self._pending = (status, message)
        self._refused = True
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        _refusals.add(str(status), self.client[0] if self.client else "-")
        if self.cycle is not None and not self.cycle.response_complete:
            # The app may still be waiting for the body: it now sees a disconnect and
            # anything it sends is dropped, as for a client that went away.
            self.cycle.disconnected = True
            self.cycle.message_event.set()
        if not self.transport.is_closing() and self._linger_timer is None:
            extra = ((b"retry-after", b"5"),) if retry_after else ()
            self.transport.write(raw_response(status, message, extra))
            self._close(linger=linger)
