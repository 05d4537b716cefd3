"""Who gets a query worker, and who gets 429 at once: lanes and per-client admission.

Without this, four slow queries from one client held every worker and the site's own
pages, `ASK {}` from anyone else and the surplus queries all waited for the time limit.
The rules:

- Two lanes. The *site* lane (`Settings.site_workers`, default 1) runs only the
  server's own page queries (`/`, `/doc/…`, `/ontology`, `/audit`: requests without a
  client); they may also borrow an idle public worker. The *public* lane
  (`Settings.workers`) runs `/sparql`.
- One client holds at most `per_client` public workers at once
  (`Settings.client_queries`, never more than `workers - 1`, so one client always leaves
  a worker to the others) and has at most `per_client_waiting` more requests waiting.
- A request that cannot have a worker now waits at most `wait` seconds
  (`Settings.queue_wait`), in arrival order; beyond the waiting limits (per client, and
  `max_waiting` per lane), or after the wait, it is refused with 429 and a Retry-After
  that says when a slot frees up at the latest (the earliest time limit of the queries
  it waits behind). Page queries wait up to the time limit, `max_waiting` at most.

A client is the address in the request's ASGI scope: the peer, or, when the peer is one
of `--trusted-proxy`, the nearest untrusted address of X-Forwarded-For read from the
right (uvicorn's ProxyHeadersMiddleware, configured with exactly those proxies; never
from a header a client wrote itself). The access log shows the same address.

Everything here runs on the event loop (no locks); slots are whatever the engine hands
in (`WorkerPoolEngine` workers, or plain tokens for `RemoteEngine`) with a `lane`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

PUBLIC = "public"
SITE = "site"


class Slot(Protocol):
    lane: str


class Saturated(Exception):
    """No worker for this request now; answer 429 with `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(eq=False)
class _Waiter:
    client: str | None
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class _WaitedTooLong(Exception):
    """A waiter's time ran out before a slot was free."""


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        future.set_exception(_WaitedTooLong())


class Lanes:
    """Admission control over a fixed set of slots (see module docstring)."""

    def __init__(
        self,
        *,
        workers: int,
        per_client: int,
        per_client_waiting: int,
        max_waiting: int,
        wait: float,
        site_wait: float,
        time_limit: float,
    ) -> None:
        self.per_client = max(1, min(int(per_client), int(workers) - 1)) if workers > 1 else 1
        self.per_client_waiting = max(0, int(per_client_waiting))
        self.max_waiting = max(0, int(max_waiting))
        self.wait = float(wait)
        self.site_wait = float(site_wait)
        self.time_limit = float(time_limit)
        self._idle: dict[str, list[Any]] = {PUBLIC: [], SITE: []}
        self._held: Counter[str] = Counter()
        self._waiting: Counter[str] = Counter()  # per client
        self._waiters: deque[_Waiter] = deque()
        self._queued = {PUBLIC: 0, SITE: 0}  # waiters per lane asked for
        self._busy: dict[Any, tuple[str | None, float]] = {}  # slot -> (client, time limit ends)

    # -- slots come and go

    def add(self, slot: Slot) -> None:
        """A new (or replacement) slot is ready."""
        self._idle[slot.lane].append(slot)
        self._dispatch()

    def release(self, slot: Slot) -> None:
        """The query on `slot` ended; the slot is free again."""
        self._forget(slot)
        self._idle[slot.lane].append(slot)
        self._dispatch()

    def is_idle(self, slot: Slot) -> bool:
        return slot in self._idle[slot.lane]

    def remove_idle(self, slot: Slot) -> None:
        """An idle slot is gone (its worker ended while waiting for work)."""
        with contextlib.suppress(ValueError):
            self._idle[slot.lane].remove(slot)

    def discard(self, slot: Slot) -> None:
        """The query on `slot` ended and the slot is gone (its worker was killed)."""
        self._forget(slot)
        self._dispatch()

    def _forget(self, slot: Slot) -> None:
        client, _until = self._busy.pop(slot, (None, 0.0))
        if client is not None:
            self._held[client] -= 1
            if self._held[client] <= 0:
                del self._held[client]

    # -- acquiring

    async def acquire(self, client: str | None) -> Any:
        """A slot for `client` (None: the site itself); raises Saturated instead of waiting long."""
        slot = self._take(client)
        if slot is not None:
            return slot
        if (
            client is not None
            and self._held[client] >= self.per_client
            and self._waiting[client] >= self.per_client_waiting
        ):
            raise Saturated(
                f"this client already runs {self._held[client]} queries and has "
                f"{self._waiting[client]} waiting, the most this endpoint allows at once; "
                "send the next one when one of them has finished",
                self._retry_after(client),
            )
        lane = SITE if client is None else PUBLIC
        if self._queued[lane] >= self.max_waiting:
            raise Saturated(
                "every query worker is busy and the queue is full; try again shortly",
                self._retry_after(client),
            )
        waiter = _Waiter(client)
        self._waiters.append(waiter)
        self._queued[lane] += 1
        if client is not None:
            self._waiting[client] += 1
        wait = self.wait if client is not None else self.site_wait
        # A timer on the waiter's own future: cheaper than `asyncio.wait_for`, which wraps
        # it (every query of a busy client waits here).
        timer = asyncio.get_running_loop().call_later(wait, _expire, waiter.future)
        try:
            return await waiter.future
        except _WaitedTooLong:
            raise Saturated(
                f"no query worker became free within {wait:g} s; the endpoint is busy, try again shortly",
                self._retry_after(client),
            ) from None
        except BaseException:
            # Cancelled (the client left) just as a slot was handed over: give it back.
            future = waiter.future
            if future.done() and not future.cancelled() and future.exception() is None:
                self.release(future.result())
            raise
        finally:
            timer.cancel()
            self._queued[lane] -= 1
            if client is not None:
                self._waiting[client] -= 1
                if self._waiting[client] <= 0:
                    del self._waiting[client]
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _take(self, client: str | None) -> Any | None:
        if client is None:
            pool = self._idle[SITE] or self._idle[PUBLIC]
        else:
            if self._held[client] >= self.per_client:
                return None
            pool = self._idle[PUBLIC]
        if not pool:
            return None
        slot = pool.pop()  # the most recently used: warm caches
        if client is not None:
            self._held[client] += 1
        loop = asyncio.get_running_loop()
        self._busy[slot] = (client, loop.time() + self.time_limit)
        return slot

    def _dispatch(self) -> None:
        """Hand free slots to waiters, first come first served (skipping clients at their cap)."""
        for waiter in list(self._waiters):
            if not (self._idle[PUBLIC] or self._idle[SITE]):
                return
            if waiter.future.done():
                continue
            slot = self._take(waiter.client)
            if slot is not None:
                waiter.future.set_result(slot)
                self._waiters.remove(waiter)

    def _retry_after(self, client: str | None) -> int:
        """Seconds until a slot this client could use frees up at the latest."""
        now = asyncio.get_running_loop().time()
        ends: Iterable[float]
        if client is not None and self._held[client] >= self.per_client:
            ends = [until for owner, until in self._busy.values() if owner == client]
        else:
            ends = [until for owner, until in self._busy.values() if owner is not None]
        soonest = min(ends, default=now + 1)
        return max(1, math.ceil(soonest - now))

    # -- figures (for logs and tests)

    def snapshot(self) -> dict[str, Any]:
        return {
            "idle": {lane: len(slots) for lane, slots in self._idle.items()},
            "busy": len(self._busy),
            "waiting": len(self._waiters),
            "clients": dict(self._held),
        }
