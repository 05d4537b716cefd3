"""Keep the server on a release that exists: lease it, and recover when it vanishes anyway.

The server serves the release `--graph` pointed to when it started (a later build does
not change what it serves), and leases it so that builds never prune it
(`twinning_kg.release.leases`). Someone can still delete it by hand. Then, instead of
answering 404 for dumps and 503 from crashing workers until restarted:

- every request checks the release's manifest is still there (one `stat`), and a watcher
  checks every few seconds when there are no requests;
- once it is gone: one log line saying so, requests get 503 with the reason (never a
  crash loop), and the keeper re-resolves `--graph` to its current release, leases it,
  starts query workers on it and switches the app over (`AppContext.release`, `.engine`);
  the old workers are stopped and a log line says what is served now;
- if `--graph` holds no release (or one with another base IRI), the 503 says so and the
  keeper tries again every few seconds, so a build brings the server back.

Starting the new workers happens on the event loop's thread (a worker must be created by
a thread that lives as long as it: see `WorkerPoolEngine._start_worker`), which pauses
other requests for the workers' start-up, about a second, once per recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twinning_kg.query.engine import QueryEngine
from twinning_kg.release.leases import Lease, ReleaseGone
from twinning_kg.release.reader import MANIFEST, Release, ReleaseError
from twinning_kg.web.context import AppContext

log = logging.getLogger("twinning_kg.release")
CHECK_EVERY = 2.0  # seconds between two checks without requests, and between two recovery attempts


def take_lease(graph: Path, release: Release) -> tuple[Release, Lease | None]:
    """Lease the release `graph` resolves to; re-resolve when a build pruned it meanwhile."""
    for _attempt in range(5):
        try:
            return release, Lease.take(release.path)
        except ReleaseGone:
            release = Release.open(graph)  # raises ReleaseError when there is none
        except OSError as exc:
            log.warning("cannot lease %s (%s): a build into %s may prune it", release.path, exc, graph)
            return release, None
    raise ReleaseError(f"{graph}: its release keeps disappearing while it is opened")


class ReleaseKeeper:
    """Watches the served release and switches to the current one when it vanishes."""

    def __init__(
        self,
        ctx: AppContext,
        graph: Path,
        lease: Lease | None,
        make_engine: Callable[[Release], QueryEngine | None],
        interval: float = CHECK_EVERY,
    ) -> None:
        """`make_engine(release)`: query engine for a release, or None to keep the current one."""
        self.ctx = ctx
        self.graph = graph
        self.lease = lease
        self.make_engine = make_engine
        self.interval = interval
        self.problem: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._event: asyncio.Event | None = None
        self._logged: str | None = None  # the last recovery failure logged (logged once each)
        self._release: Release | None = None
        self._manifest_path = ""
        ctx.release_problem = self.check

    # -- checks

    def check(self) -> str | None:
        """None while the served release is there; else the reason (and recovery is under way)."""
        if self.problem is None and not os.path.isfile(self._manifest()):
            self._lost()
        return self.problem

    def _manifest(self) -> str:
        """The served release's manifest path, as text (every request stats it: no pathlib)."""
        release = self.ctx.release
        if release is not self._release:
            self._release, self._manifest_path = release, str(release.path / MANIFEST)
        return self._manifest_path

    def _lost(self) -> None:
        release = self.ctx.release
        log.error(
            "the release being served (%s) has been removed from disk; switching to the current "
            "release of %s",
            release.path,
            self.graph,
        )
        self.problem = (
            f"the data release this server was serving ({release.version[:12]}) has been removed; "
            "the server is switching to the current release, try again in a few seconds"
        )
        self._wake()

    # -- life cycle (started and stopped with the app's lifespan)

    def start(self) -> None:
        self._wake()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.lease is not None:
            self.lease.release()

    def _wake(self) -> None:
        """Run the watcher now (starting it if needed)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: the next request wakes it
            return
        if self._event is None:
            self._event = asyncio.Event()
        self._event.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        assert self._event is not None
        while True:
            if self.problem is not None:
                await self._recover()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._event.wait(), self.interval)
            self._event.clear()
            self.check()

    def _failed(self, message: str, *args: Any) -> None:
        """Log a recovery failure once (it is retried every few seconds)."""
        text = message % args
        if text != self._logged:
            log.error("%s", text)
            self._logged = text

    # -- recovery

    async def _recover(self) -> None:
        try:
            current = Release.open(self.graph)
            if current.path == self.ctx.release.path:
                raise ReleaseError(f"{self.graph} still points to the removed release")
            if current.base_iri != self.ctx.base_iri:
                self.problem = (
                    "the data release this server was serving has been removed, and the current one "
                    "has another base IRI; the server must be restarted"
                )
                self._failed("%s: the current release has base IRI %s, not %s; restart the server",
                             self.graph, current.base_iri, self.ctx.base_iri)
                return
            current, lease = take_lease(self.graph, current)
        except ReleaseError as exc:
            self.problem = (
                "the data release this server was serving has been removed and there is no other "
                "to serve yet; try again later"
            )
            self._failed("no release to switch to: %s", exc)
            return
        try:
            engine = self.make_engine(current)
        except Exception as exc:  # noqa: BLE001 - stay on 503 and retry, never crash the server
            if lease is not None:
                lease.release()
            self._failed("cannot start query workers on %s: %s", current.path, exc)
            return
        old_engine, old_lease = self.ctx.engine, self.lease
        self.ctx.release = current
        if engine is not None:
            self.ctx.engine = engine
        self.lease = lease
        self.problem = self._logged = None
        log.warning(
            "now serving release %s (%s triples) from %s",
            current.path.name, current.manifest.get("triples", "?"), self.graph,
        )
        if old_lease is not None:
            old_lease.release()
        if engine is not None:
            await _close(old_engine)


async def _close(engine: QueryEngine) -> None:
    """Stop an engine's workers without blocking the event loop on their exit."""
    await engine.close()
