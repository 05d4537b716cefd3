"""The query execution layer: one small interface, engines behind it.

`WorkerPoolEngine` runs SPARQL on pyoxigraph's native engine in worker *processes*,
each holding the release's on-disk store opened read-only. Processes rather than
threads because pyoxigraph cannot cancel a running query: the only way to enforce a
time limit (and to leave no runaway work eating a core) is to kill the worker that
overran and start a fresh one. The event loop never evaluates anything; it waits on
the workers' pipes itself (`loop.add_reader`, no thread hop), reading replies without
ever blocking, so one slow query never stalls other clients; and when
every worker is busy the pool grows (up to twice its size) rather than queueing quick
queries behind slow ones.

Results are serialised in the worker by pyoxigraph's native writers. The row cap is
checked without a Python loop over solutions: SELECT results are first written as
SPARQL TSV (one line per row, newlines inside literals are escaped) into a writer that
stops the serialiser as soon as the cap is passed; within the cap the TSV is parsed
back natively and re-serialised in the negotiated format.

Why not rdflib-endpoint's execution path: it evaluates with rdflib on the event loop
(one slow query blocks everybody, no time limit), ignores `default-graph-uri`, and
rdflib's engine fetches `FROM <url>`/`file:` and runs any SERVICE. We keep its
service description and YASGUI page (twinning_kg.web.sparql) and replace execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import struct
import sys
import threading
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from twinning_kg import query_guard
from twinning_kg.config import Settings
from twinning_kg.result_formats import FALLBACK_GRAPH_MEDIA_TYPE, GRAPH_FORMATS, Choice, negotiate

START_TIMEOUT = 60.0  # seconds a worker may take to open the store
DEFAULT_WORKER_MEMORY_MB = 2048  # heap cap per worker; a query needing more is stopped

log = logging.getLogger("twinning_kg.engine")

# A worker's reply: this header (lengths of the pickled metadata and of the body), the
# metadata (the reply tuple without the body), then the body bytes as they are.
_REPLY_HEADER = struct.Struct("!QQ")
_READ_CHUNK = 1 << 20


class QueryError(Exception):
    """A query that cannot be answered; `status` is the HTTP status, `message` says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class QueryRequest:
    query: str
    default_graph_uris: tuple[str, ...] = ()
    named_graph_uris: tuple[str, ...] = ()
    accept: str = "*/*"  # raw Accept header; the engine picks the result format


@dataclass
class QueryResult:
    form: str  # "SELECT" | "ASK" | "CONSTRUCT" | "DESCRIBE"
    media_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (optional)


class QueryEngine(Protocol):
    async def execute(self, request: QueryRequest) -> QueryResult: ...

    async def close(self) -> None: ...


def guard(request: QueryRequest, settings: Settings) -> query_guard.QueryInfo:
    """Run the query guard, turning its refusal into a QueryError (shared by all engines)."""
    try:
        return query_guard.check(request.query, settings.service_allowlist, base_iri=settings.base_iri)
    except query_guard.GuardError as exc:
        raise QueryError(exc.status, exc.message) from exc


# --------------------------------------------------------------------------- worker side


class _RowCapExceeded(Exception):
    pass


class _CappedWriter:
    """A binary sink that stops the serialiser once more than `max_lines` lines arrived."""

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines
        self.lines = 0
        self.chunks: list[bytes] = []
        self.exceeded = False

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        if self.lines > self.max_lines:
            self.exceeded = True
            raise _RowCapExceeded()
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def getvalue(self) -> bytes:
        return b"".join(self.chunks)


def _set_parent_death_signal() -> None:
    """Linux: die with the server even if it is SIGKILLed (no orphaned workers)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _limit_memory(megabytes: int) -> None:
    """Cap the worker's heap (RLIMIT_DATA): a query that needs more aborts its own process
    instead of pushing the machine into swap. The store's memory-mapped files do not count."""
    if megabytes > 0:
        with contextlib.suppress(ValueError, OSError):
            limit = megabytes * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _worker_main(conn: Any, store_path: str, max_rows: int, memory_mb: int = 0) -> None:
    """Worker process: open the store read-only, answer jobs until the pipe closes."""
    _set_parent_death_signal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    _limit_memory(memory_mb)
    try:
        import pyoxigraph

        store = pyoxigraph.Store.read_only(store_path)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a message
        conn.send(("error", 0, f"cannot open the store {store_path}: {exc}"))
        return
    conn.send(("ready", os.getpid(), ""))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = _run_job(pyoxigraph, store, job, max_rows)
        except Exception as exc:  # noqa: BLE001 - never let a worker die on a bad query
            reply = ("error", 400, f"query failed: {exc}")
        try:
            _send_reply(conn.fileno(), reply)
        except OSError:
            return


def _send_reply(fd: int, reply: tuple) -> None:
    """Write one framed reply (see _REPLY_HEADER); the body is not pickled, only copied once."""
    if reply[0] == "ok":
        meta, body = pickle.dumps(reply[:-1], protocol=pickle.HIGHEST_PROTOCOL), reply[-1]
    else:
        meta, body = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL), b""
    view = memoryview(_REPLY_HEADER.pack(len(meta), len(body)) + meta + body)
    while view:
        view = view[os.write(fd, view) :]


def _run_job(ox: Any, store: Any, job: dict[str, Any], max_rows: int) -> tuple:
    kwargs: dict[str, Any] = {}
    try:
        if job["default_graphs"] or job["named_graphs"]:
            # SPARQL 1.1 Protocol §2.1.4: a protocol dataset replaces the query's.
            kwargs["default_graph"] = [ox.NamedNode(u) for u in job["default_graphs"]]
            kwargs["named_graphs"] = [ox.NamedNode(u) for u in job["named_graphs"]]
        elif job["union"]:
            kwargs["use_default_graph_as_union"] = True
    except ValueError as exc:
        return ("error", 400, f"invalid graph IRI in default-graph-uri/named-graph-uri: {exc}")
    try:
        result = store.query(job["query"], base_iri=job["base_iri"], **kwargs)
    except SyntaxError as exc:
        return ("error", 400, f"SPARQL syntax error: {exc}")
    except OSError as exc:
        return _evaluation_error(job, exc)
    try:
        if isinstance(result, ox.QueryBoolean):
            choice = negotiate("ASK", job["accept"])
            body = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            return ("ok", "ASK", choice.content_type, body)
        if isinstance(result, ox.QuerySolutions):
            return _solutions(ox, result, job["accept"], max_rows)
        return _triples(ox, result, job, max_rows)
    except OSError as exc:
        return _evaluation_error(job, exc)


def _evaluation_error(job: dict[str, Any], exc: Exception) -> tuple:
    if job["services"]:
        # Our data is local and read-only: an I/O error while a SERVICE is involved is
        # the remote service failing. 424 Failed Dependency (RFC 4918 §11.4) says the
        # query was fine but depended on something that failed; not a fault of ours (5xx).
        services = ", ".join(f"<{s}>" for s in job["services"])
        return ("error", 424, f"the federated service {services} could not be queried: {exc}")
    return ("error", 400, f"query evaluation failed: {exc}")


def _solutions(ox: Any, solutions: Any, accept: str, max_rows: int) -> tuple:
    choice = negotiate("SELECT", accept)
    writer = _CappedWriter(max_rows + 1)  # + the header line
    try:
        solutions.serialize(writer, format=ox.QueryResultsFormat.TSV)
    except Exception:
        if not writer.exceeded:
            raise
    if writer.exceeded:
        return ("error", 422, _row_cap_message(max_rows))
    tsv = writer.getvalue()
    if choice.format == "TSV":
        return ("ok", "SELECT", choice.content_type, tsv)
    again = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
    body = again.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
    return ("ok", "SELECT", choice.content_type, body)


def _triples(ox: Any, triples: Any, job: dict[str, Any], max_rows: int) -> tuple:
    form = job["form"] if job["form"] in ("CONSTRUCT", "DESCRIBE") else "CONSTRUCT"
    choice = negotiate(form, job["accept"])
    collected = []
    for triple in triples:
        collected.append(triple)
        if len(collected) > max_rows:
            return ("error", 422, _row_cap_message(max_rows, "triples"))
    try:
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, choice.format))
    except (ValueError, OSError) as exc:
        if choice.explicit:
            return ("error", 406, f"this result cannot be written as {choice.media_type}: {exc}")
        fallback = Choice(FALLBACK_GRAPH_MEDIA_TYPE, GRAPH_FORMATS[FALLBACK_GRAPH_MEDIA_TYPE], False)
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, fallback.format))
        choice = fallback
    return ("ok", form, choice.content_type, body)


def _row_cap_message(max_rows: int, what: str = "rows") -> str:
    return (
        f"the result has more than {max_rows} {what}, the limit of this endpoint; "
        "add a LIMIT (and OFFSET to page) or download the dumps"
    )


# --------------------------------------------------------------------------- parent side


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
    def __init__(self, process: Any, conn: Any, pid: int) -> None:
        self.process = process
        self.conn = conn
        self.pid = pid
        self.fd = conn.fileno()


class _ReplyReader:
    """Collects one framed reply from a worker's pipe, called by the event loop when the
    pipe is readable. Each call reads once: a read on a readable descriptor returns what
    is there without waiting, so a large reply never blocks the loop while it arrives."""

    def __init__(self, fd: int, future: asyncio.Future[tuple]) -> None:
        self.fd = fd
        self.future = future
        self.buffer = bytearray()
        self.meta_len = -1
        self.body_len = 0

    def __call__(self) -> None:
        if self.future.done():
            return
        try:
            data = os.read(self.fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as exc:
            self.future.set_exception(exc)
            return
        if not data:
            self.future.set_exception(EOFError("the worker closed its pipe"))
            return
        self.buffer += data
        size = _REPLY_HEADER.size
        if self.meta_len < 0:
            if len(self.buffer) < size:
                return
            self.meta_len, self.body_len = _REPLY_HEADER.unpack_from(self.buffer)
        end = size + self.meta_len + self.body_len
        if len(self.buffer) < end:
            return
        view = memoryview(self.buffer)
        meta = pickle.loads(view[size : size + self.meta_len])
        if meta[0] == "ok":
            meta = (*meta, bytes(view[size + self.meta_len : end]))  # one copy of the body
        view.release()
        self.future.set_result(meta)


class WorkerPoolEngine:
    """N worker processes over the release's pyoxigraph store (see module docstring)."""

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
        self._size = max(1, int(settings.workers))
        self._max_size = 2 * self._size  # growth when every worker is busy (see _acquire)
        self._starting = 0  # workers started but not ready yet (event-loop thread only)
        self._idle: asyncio.Queue[_Worker] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        pending = [self._spawn() for _ in range(self._size)]  # start all, then wait: parallel start-up
        self._ready: list[_Worker] = []
        try:
            for process, conn in pending:
                self._ready.append(self._await_ready(process, conn))
        except Exception:
            for process, _conn in pending:
                process.kill()
            raise

    # -- life cycle

    def _spawn(self) -> tuple[Any, Any]:
        parent_conn, child_conn = self._mp.Pipe(duplex=True)
        process = self._mp.Process(
            target=_worker_main,
            args=(child_conn, self.store_path, int(self.settings.max_rows), self.memory_limit_mb),
            name="twinning-kg-sparql-worker",
            daemon=True,
        )
        with _bare_main():
            process.start()
        child_conn.close()  # so the worker's death shows as EOF on our end
        return process, parent_conn

    def _await_ready(self, process: Any, conn: Any) -> _Worker:
        if not conn.poll(START_TIMEOUT):
            process.kill()
            raise RuntimeError(f"SPARQL worker did not start within {START_TIMEOUT:.0f}s")
        try:
            kind, pid, message = conn.recv()
        except EOFError as exc:
            raise RuntimeError(
                f"SPARQL worker exited during start-up (exit code {process.exitcode})"
            ) from exc
        if kind != "ready":
            process.join(5)
            raise RuntimeError(message)
        worker = _Worker(process, conn, pid)
        with self._lock:
            self._all.add(worker)
        return worker

    def _queue(self) -> asyncio.Queue[_Worker]:
        if self._idle is None:
            self._loop = asyncio.get_running_loop()
            self._idle = asyncio.Queue()
            for worker in self._ready:
                self._idle.put_nowait(worker)
            self._ready = []
        return self._idle

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker (it overran or broke) and start a replacement in the background."""
        with self._lock:
            self._all.discard(worker)
        with contextlib.suppress(Exception):
            worker.process.kill()

        def reap() -> None:
            with contextlib.suppress(Exception):
                worker.process.join(10)
            with contextlib.suppress(Exception):
                worker.conn.close()

        threading.Thread(target=reap, name="sparql-reap", daemon=True).start()
        self._start_worker()

    def _start_worker(self) -> None:
        """Start one more worker; it joins the idle queue once it has opened the store.

        The process is created here, on the event loop's thread, and only *waited for*
        in a helper thread: Linux's parent-death signal fires when the creating thread
        ends, so a worker must not be created by a short-lived thread.
        """
        if self._closed or self._loop is None or self._idle is None:
            return
        try:
            spawned = self._spawn()
        except Exception:  # noqa: BLE001 - the pool stays smaller; the next need retries
            log.exception("could not start a SPARQL worker")
            return
        self._starting += 1
        loop, idle = self._loop, self._idle

        def arrived(fresh: _Worker | None) -> None:
            self._starting -= 1
            if fresh is not None:
                idle.put_nowait(fresh)

        def wait_ready() -> None:
            try:
                fresh = self._await_ready(*spawned)
            except Exception:  # noqa: BLE001 - the pool stays smaller; the next need retries
                log.exception("a SPARQL worker failed to start")
                fresh = None
            if fresh is not None and self._closed:
                self._terminate(fresh)
                fresh = None
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(arrived, fresh)

        threading.Thread(target=wait_ready, name="sparql-start", daemon=True).start()

    async def _acquire(self, timeout: float) -> _Worker:
        """An idle worker; when all are busy, grow the pool (up to twice its size) so that
        one or two slow queries never make quick ones wait for the time limit."""
        idle = self._queue()
        if not idle.empty():
            return idle.get_nowait()  # the usual case: no timer, no task
        with self._lock:
            running = len(self._all)
        if running + self._starting < self._max_size:
            self._start_worker()
        try:
            return await asyncio.wait_for(idle.get(), timeout)
        except TimeoutError as exc:
            raise QueryError(
                429, f"all {self._max_size} query workers stayed busy for {timeout:g} s; try again later"
            ) from exc

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

    async def close(self) -> None:
        self.shutdown()

    # -- queries

    async def execute(self, request: QueryRequest) -> QueryResult:
        if self._closed:
            raise QueryError(503, "the server is shutting down; try again in a moment")
        info = guard(request, self.settings)
        loop = asyncio.get_running_loop()
        timeout = float(self.settings.query_timeout)
        deadline = loop.time() + timeout
        worker = await self._acquire(timeout)
        idle = self._queue()
        job = {
            "query": request.query,
            "default_graphs": tuple(request.default_graph_uris),
            "named_graphs": tuple(request.named_graph_uris),
            "union": self.union_default_graph and not info.has_dataset_clause,
            "accept": request.accept,
            "form": info.form,
            "services": info.services,
            # Relative IRIs resolve against the dataset's base IRI, as in our data files.
            "base_iri": self.settings.base_iri,
        }
        try:
            reply = await self._ask(loop, worker, job, max(0.01, deadline - loop.time()))
        except TimeoutError as exc:
            self._discard(worker)
            raise QueryError(
                422,
                f"the query ran longer than the time limit of {timeout:g} s and was stopped; "
                "narrow it down (LIMIT, more specific patterns) or download the dumps",
            ) from exc
        except asyncio.CancelledError:
            # The client went away (or the server is stopping): the work must stop too.
            self._discard(worker)
            raise
        except (EOFError, OSError) as exc:
            self._discard(worker)
            if self._closed:
                raise QueryError(503, "the server is shutting down; try again in a moment") from exc
            log.warning(
                "SPARQL worker %d died during a query (exit code %s)", worker.pid, worker.process.exitcode
            )
            raise QueryError(
                422,
                "the query needed more memory than a query may use "
                "(its worker process stopped); it was not completed",
            ) from exc
        idle.put_nowait(worker)
        if reply[0] == "ok":
            _kind, form, media_type, body = reply
            # A federated answer is not tied to our release: no ETag/304, no caching.
            headers = {"Cache-Control": "no-store"} if info.services else {}
            return QueryResult(form=form, media_type=media_type, body=body, headers=headers)
        _kind, status, message = reply
        raise QueryError(status, message)

    @staticmethod
    async def _ask(
        loop: asyncio.AbstractEventLoop, worker: _Worker, job: dict[str, Any], timeout: float
    ) -> tuple:
        """Send `job` to `worker` and wait, on the event loop itself, for its reply or `timeout`."""
        future: asyncio.Future[tuple] = loop.create_future()
        worker.conn.send(job)  # the worker is idle, waiting for this: the write does not stall

        def expire() -> None:
            if not future.done():
                future.set_exception(TimeoutError())

        loop.add_reader(worker.fd, _ReplyReader(worker.fd, future))
        timer = loop.call_later(timeout, expire)
        try:
            return await future
        finally:
            timer.cancel()
            loop.remove_reader(worker.fd)


def graph_uris(values: Iterable[str]) -> tuple[str, ...]:
    """Normalise repeated protocol parameters (order kept, duplicates dropped)."""
    return tuple(dict.fromkeys(v for v in values if v))
