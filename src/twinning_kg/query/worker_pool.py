"""`WorkerPoolEngine`: SPARQL on pyoxigraph's native engine in worker processes.

Each worker (`worker.worker_main`) holds the release's on-disk store opened read-only.
The event loop never evaluates anything; it watches the workers' pipes itself
(`loop.add_reader`, no thread hop, registered once per worker), reading replies without
ever blocking, so one slow query never stalls other clients. A worker that overruns its
time limit, or dies (during a query or while idle), is killed and replaced.

Who gets a worker is decided by `admission.Lanes`: the site's own pages have a lane of
their own, one client holds at most a few workers at once, and a request that cannot
get one within `queue_wait` gets 429 with Retry-After at once instead of after the
time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import pickle
import signal
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from twinning_kg.config import Settings
from twinning_kg.query import sandbox
from twinning_kg.query.admission import PUBLIC, SITE, Lanes, Saturated
from twinning_kg.query.egress import EgressProxy
from twinning_kg.query.engine import QueryError, QueryRequest, QueryResult, busy_error, time_limit_error
from twinning_kg.query.syntax import Budget
from twinning_kg.query.worker import WorkerConfig, worker_main
from twinning_kg.query.worker_messages import Job, Ready, Refusal, Reply, ReplyReader, StartFailed

START_TIMEOUT = 60.0  # seconds a worker may take to open the store
DEFAULT_WORKER_MEMORY_MB = 2048  # heap cap per worker; a query needing more is stopped
RESTART_FIRST, RESTART_MAX = 1.0, 60.0  # seconds before retrying a replacement that failed to start

log = logging.getLogger("twinning_kg.engine")
# Signals that mean the process itself faulted (a bug of the engine), not a limit we set.
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE})


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """Hide `__main__` while starting a worker.

    multiprocessing's spawn re-imports the parent's main module in every child; for
    `twinning-kg serve` that is the whole CLI (rdflib, pyshacl, FastAPI): seconds of
    start-up and tens of MB per worker for nothing. A worker needs only this module.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


class _Worker:
    def __init__(self, process: Any, conn: Any, ready: Ready, lane: str) -> None:
        self.process = process
        self.conn = conn
        self.pid = ready.pid
        self.fd = conn.fileno()
        self.lane = lane
        self.level = ready.level
        self.isolation_detail = ready.detail
        self.reply: ReplyReader | None = None  # the reply being read; None while idle
        self.watched = False  # its pipe is registered with the event loop


class WorkerPoolEngine:
    """Query workers in two lanes over the release's pyoxigraph store (see module docstring)."""

    # The function a worker process runs (a class attribute so that a test can start
    # workers whose guard is switched off, to show what the isolation alone stops).
    worker_target = staticmethod(worker_main)

    def __init__(
        self,
        store_path: Path | str,
        settings: Settings,
        *,
        union_default_graph: bool = True,
        memory_limit_mb: int = DEFAULT_WORKER_MEMORY_MB,
    ) -> None:
        """`memory_limit_mb`: heap cap per worker process (0: none)."""

        self.store_path = str(store_path)
        self.memory_limit_mb = int(memory_limit_mb)
        self.settings = settings
        self.union_default_graph = union_default_graph
        self._mp = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._restart_delay: dict[str, float] = {}  # lane -> seconds before the next retry
        allowlist = tuple(settings.service_allowlist)
        self._proxy: EgressProxy | None = None
        if allowlist and settings.worker_isolation != "seccomp":
            self._proxy = EgressProxy(
                allowlist,
                timeout=float(settings.query_timeout),
                max_bytes=int(settings.service_max_bytes),
                max_request_bytes=int(settings.max_request_bytes),
            )
        self._config = WorkerConfig(
            store_path=self.store_path,
            max_rows=int(settings.max_rows),
            memory_mb=self.memory_limit_mb,
            isolation=settings.worker_isolation,
            egress_socket=self._proxy.path if self._proxy else None,
            allowlist=allowlist,
            base_iri=settings.base_iri,
            budget=Budget.of(settings),
        )
        workers = max(1, int(settings.workers))
        self._lanes = Lanes(
            workers=workers,
            per_client=int(settings.client_queries),
            per_client_waiting=int(settings.client_waiting),
            max_waiting=int(settings.max_waiting),
            wait=float(settings.queue_wait),
            site_wait=float(settings.query_timeout),
            time_limit=float(settings.query_timeout),
        )
        lanes = [PUBLIC] * workers + [SITE] * max(0, int(settings.site_workers))
        pending = [(lane, *self._spawn()) for lane in lanes]  # start all, then wait: parallel start-up
        self._ready: list[_Worker] = []
        try:
            for lane, process, conn in pending:
                self._ready.append(self._await_ready(process, conn, lane))
        except Exception:
            for _lane, process, _conn in pending:
                process.kill()
            self._close_proxy()
            raise
        weakest = min(self._ready, key=lambda w: sandbox.LEVELS.index(w.level))
        self.isolation = weakest.level
        self.isolation_detail = weakest.isolation_detail
        self.federation = bool(allowlist) and self.isolation == "namespace" and self._proxy is not None
        self._report_isolation(allowlist)

    def _report_isolation(self, allowlist: tuple[str, ...]) -> None:
        """Fail closed, and say so at start-up: federation only from isolated workers."""
        if self.settings.worker_isolation == "namespace" and self.isolation != "namespace":
            self.shutdown()
            raise RuntimeError(
                f"the query workers cannot get a network namespace on this host ({self.isolation_detail})"
            )
        if self._proxy is not None and not self.federation:
            self._close_proxy()
        if self.isolation == "none":
            log.error(
                "query workers are NOT isolated from the network on this host (%s): SERVICE is refused, "
                "and the query guard is the only protection against a query reaching the network",
                self.isolation_detail,
            )
        elif allowlist and not self.federation:
            log.error(
                "federated queries are disabled: the query workers have no network namespace (%s), "
                "so SERVICE to %s is refused",
                self.isolation_detail,
                ", ".join(allowlist),
            )
        log.info("query workers: %s", self.describe_isolation())

    def describe_isolation(self) -> str:
        """One line for the start-up message: how the workers are cut off, what may leave."""
        if self.isolation == "namespace":
            where = "network namespace (loopback only)"
        elif self.isolation == "seccomp":
            where = "seccomp filter (no network sockets)"
        else:
            where = "NOT isolated"
        if self.federation:
            count = len(self.settings.service_allowlist)
            return f"{where}; SERVICE only via the egress proxy to {count} allow-listed endpoint(s)"
        return f"{where}; federation off"

    # -- life cycle

    def _spawn(self) -> tuple[Any, Any]:
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        process = self._mp.Process(
            target=type(self).worker_target,
            args=(child_conn, self._config),
            name="twinning-kg-sparql-worker",
            daemon=True,
        )
        with _bare_main():
            process.start()
        child_conn.close()  # so the worker's death shows as EOF on our end
        return process, parent_conn

    def _await_ready(self, process: Any, conn: Any, lane: str) -> _Worker:
        if not conn.poll(START_TIMEOUT):
            process.kill()
            raise RuntimeError(f"SPARQL worker did not start within {START_TIMEOUT:.0f}s")
        try:
            message: Ready | StartFailed = conn.recv()
        except EOFError as exc:
            raise RuntimeError(
                f"SPARQL worker exited during start-up (exit code {process.exitcode})"
            ) from exc
        if isinstance(message, StartFailed):
            process.join(5)
            raise RuntimeError(message.message)
        worker = _Worker(process, conn, message, lane)
        with self._lock:
            self._all.add(worker)
        return worker

    def _bind(self) -> None:
        """On the first query: hand the started workers to the lanes, on this event loop."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            for worker in self._ready:
                self._watch(worker)
                self._lanes.add(worker)
            self._ready = []

    def _watch(self, worker: _Worker) -> None:
        """Register the worker's pipe with the event loop for as long as the worker lives:
        a reply goes to the query waiting for it; anything while idle is the worker's end."""
        assert self._loop is not None
        self._loop.add_reader(worker.fd, self._readable, worker)
        worker.watched = True

    def _unwatch(self, worker: _Worker) -> None:
        if worker.watched and self._loop is not None:
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._loop.remove_reader(worker.fd)
        worker.watched = False

    def _readable(self, worker: _Worker) -> None:
        if worker.reply is not None:
            worker.reply()
            return
        # No reply awaited, yet readable: EOF (or junk). Nothing more will come from this
        # worker; stop watching it (an EOF stays readable).
        self._unwatch(worker)
        if self._closed or not self._lanes.is_idle(worker):
            return  # stopping; or its query just failed, and that query's error path replaces it
        # It died while idle (the OOM killer, an operator): replace it now rather than let
        # the next query find out.
        log.warning("SPARQL worker %d ended while idle; starting another", worker.pid)
        self._lanes.remove_idle(worker)
        self._discard(worker)

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker (it overran or broke) and start a replacement in the background."""
        self._unwatch(worker)
        with self._lock:
            if worker not in self._all:
                return  # discarded already
            self._all.discard(worker)
        self._lanes.discard(worker)
        with contextlib.suppress(Exception):
            worker.process.kill()

        def reap() -> None:
            with contextlib.suppress(Exception):
                worker.process.join(10)
            with contextlib.suppress(Exception):
                worker.conn.close()

        threading.Thread(target=reap, name="sparql-reap", daemon=True).start()
        self._start_worker(worker.lane)

    def _start_worker(self, lane: str) -> None:
        """Start one more worker; it joins its lane once it has opened the store.

        The process is created here, on the event loop's thread, and only *waited for*
        in a helper thread: Linux's parent-death signal fires when the creating thread
        ends, so a worker must not be created by a short-lived thread.
        """
        if self._closed or self._loop is None:
            return
        loop = self._loop
        try:
            spawned = self._spawn()
        except Exception:  # noqa: BLE001 - the lane is short of one until the retry
            log.exception("could not start a SPARQL worker")
            self._retry_start(lane)
            return

        def arrived(fresh: _Worker | None) -> None:
            if fresh is None:
                self._retry_start(lane)
                return
            self._restart_delay.pop(lane, None)
            if sandbox.LEVELS.index(fresh.level) < sandbox.LEVELS.index(self.isolation):
                # Never run a worker less isolated than the engine promised: fail closed.
                log.error(
                    "a new SPARQL worker could not be isolated as the others (%s); it is not used",
                    fresh.isolation_detail,
                )
                self._terminate(fresh)
                return
            if self._closed:
                self._terminate(fresh)
                return
            self._watch(fresh)
            self._lanes.add(fresh)

        def wait_ready() -> None:
            try:
                fresh: _Worker | None = self._await_ready(*spawned, lane)
            except Exception as exc:  # noqa: BLE001 - the lane is short of one until the retry
                log.error("a SPARQL worker failed to start (%s); trying again shortly", exc)
                fresh = None
            if fresh is not None and self._closed:
                self._terminate(fresh)
                fresh = None
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(arrived, fresh)

        threading.Thread(target=wait_ready, name="sparql-start", daemon=True).start()

    def _retry_start(self, lane: str) -> None:
        """A replacement did not start (killed during start-up, say): try again, waiting
        longer after each failure in a row (1 s, doubling, at most a minute)."""
        if self._closed or self._loop is None:
            return
        delay = self._restart_delay.get(lane, RESTART_FIRST / 2) * 2
        self._restart_delay[lane] = min(delay, RESTART_MAX)
        self._loop.call_later(self._restart_delay[lane], self._start_worker, lane)

    def _terminate(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        with contextlib.suppress(Exception):
            worker.conn.close()
        with contextlib.suppress(Exception):
            worker.process.terminate()
            worker.process.join(2)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(2)

    def _close_proxy(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None

    def stop_workers(self) -> None:
        """Kill every worker now, without waiting (safe in a signal handler).

        Called when the server is told to stop: queries still running end at once with
        a 503 instead of holding the shutdown until uvicorn cancels them.
        """
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for worker in workers + self._ready:
            with contextlib.suppress(Exception):
                worker.process.kill()

    def shutdown(self) -> None:
        """Stop every worker and reap it (synchronous: also called after the server stopped)."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for worker in workers + self._ready:
            self._terminate(worker)
        self._close_proxy()

    async def close(self) -> None:
        """`shutdown` in a thread: reaping the workers may take seconds, the loop goes on.
        The pipes leave the event loop first, here on its thread."""
        self._closed = True
        with self._lock:
            workers = list(self._all)
        for worker in workers:
            self._unwatch(worker)
        await asyncio.to_thread(self.shutdown)

    # -- queries

    async def execute(self, request: QueryRequest) -> QueryResult:
        if self._closed:
            raise QueryError(503, "the server is shutting down; try again in a moment")
        self._bind()
        loop = asyncio.get_running_loop()
        timeout = float(self.settings.query_timeout)
        try:
            worker = await self._lanes.acquire(request.client)
        except Saturated as exc:
            raise busy_error(exc) from exc
        job = Job(
            query=request.query,
            default_graphs=tuple(request.default_graph_uris),
            named_graphs=tuple(request.named_graph_uris),
            union=self.union_default_graph,
            accept=request.accept,
            base_iri=self.settings.base_iri,
            public_base=request.public_base,
        )
        try:
            reply = await self._ask(loop, worker, job, timeout)
        except TimeoutError as exc:
            self._discard(worker)
            raise time_limit_error(timeout) from exc
        except asyncio.CancelledError:
            # The client went away (or the server is stopping): the work must stop too.
            self._discard(worker)
            raise
        except (EOFError, OSError) as exc:
            await asyncio.to_thread(worker.process.join, 2)  # its exit status says why
            self._discard(worker)
            if self._closed:
                raise QueryError(503, "the server is shutting down; try again in a moment") from exc
            raise self._died(worker) from exc
        self._lanes.release(worker)
        if isinstance(reply, Refusal):
            raise QueryError(reply.status, reply.message)
        # A federated answer is not tied to our release: no ETag/304, no caching.
        headers = {"Cache-Control": "no-store"} if reply.federated else {}
        return QueryResult(form=reply.form, media_type=reply.media_type, body=reply.body, headers=headers)

    def _died(self, worker: _Worker) -> QueryError:
        """Why a worker died during a query, told by how it ended (never a 5xx: the server is fine).

        SIGABRT under our heap limit is an allocation that failed (Rust and C++ abort
        then); SIGSEGV/SIGBUS/SIGILL/SIGFPE is a crash of the engine itself; SIGKILL not
        sent by us is the kernel's OOM killer or an operator.
        """
        code = worker.process.exitcode
        described = f"exit code {code}"
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                described = signal.Signals(-code).name
        log.warning("SPARQL worker %d died during a query (%s)", worker.pid, described)
        if code is not None and -code in _CRASH_SIGNALS:
            return QueryError(
                422,
                f"the query crashed its worker process ({described}) and was not completed; the "
                "worker was replaced. This is a fault of the query engine, not of the query's size: "
                "please report the query",
            )
        if code == -signal.SIGABRT and self.memory_limit_mb:
            return QueryError(
                422,
                f"the query needed more memory than a query may use ({self.memory_limit_mb} MB; its "
                "worker process stopped); it was not completed",
            )
        if code == -signal.SIGKILL:
            return QueryError(
                422,
                "the query's worker process was killed by the system (most likely out of memory); "
                "it was not completed",
            )
        return QueryError(
            422, f"the query's worker process stopped unexpectedly ({described}); it was not completed"
        )

    @staticmethod
    async def _ask(loop: asyncio.AbstractEventLoop, worker: _Worker, job: Job, timeout: float) -> Reply:
        """Send `job` to `worker` and wait, on the event loop itself, for its reply or `timeout`."""
        future: asyncio.Future[Reply] = loop.create_future()
        # The worker is idle, waiting for this: the write does not stall. Plain pickle:
        # `Connection.send`'s pickler copies its dispatch table on every message.
        worker.conn.send_bytes(pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))

        def expire() -> None:
            if not future.done():
                future.set_exception(TimeoutError())

        worker.reply = ReplyReader(worker.fd, future)
        timer = loop.call_later(timeout, expire)
        try:
            return await future
        finally:
            timer.cancel()
            worker.reply = None
