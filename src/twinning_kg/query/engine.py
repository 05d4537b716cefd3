"""The query execution layer: one small interface, engines behind it.

`WorkerPoolEngine` runs SPARQL on pyoxigraph's native engine in worker *processes*,
each holding the release's on-disk store opened read-only. Processes rather than
threads because pyoxigraph cannot cancel a running query: the only way to enforce a
time limit (and to leave no runaway work eating a core) is to kill the worker that
overran and start a fresh one. The event loop never evaluates anything; it waits on
the workers' pipes itself (`loop.add_reader`, no thread hop), reading replies without
ever blocking, so one slow query never stalls other clients.

Inside a worker, in this order, each under the query's time limit (a worker that
overruns is killed, whatever it was doing):
1. the guard (`query_guard.check`, a linear reader of the whole query with a complexity
   budget): syntax errors 400, updates and SERVICE outside the allow-list 403, over
   budget 422. It runs here, off the server's event loop and out of its process, so
   checking a query can never freeze the server; a small cache spares repeated queries;
2. SERVICE targets the guard accepted are rewritten to the relay of the worker's own
   network namespace (`sandbox`), which leads to the egress proxy (`egress`): the
   worker itself can reach no network, so a query the guard misread calls nothing;
3. evaluation by pyoxigraph, and serialisation by its native writers.

Who gets a worker is decided by `admission.Lanes`: the site's own pages have a lane of
their own, one client holds at most a few workers at once, and a request that cannot
get one within `queue_wait` gets 429 with Retry-After at once instead of after the
time limit.

The row cap is checked without a Python loop over solutions: SELECT results are first
written as SPARQL TSV (one line per row, newlines inside literals are escaped) into a
writer that stops the serialiser as soon as the cap is passed; within the cap the TSV
is parsed back natively and re-serialised in the negotiated format.

Why not rdflib-endpoint's execution path: it evaluates with rdflib on the event loop
(one slow query blocks everybody, no time limit), ignores `default-graph-uri`, and
rdflib's engine fetches `FROM <url>`/`file:` and runs any SERVICE. We keep its
service description and YASGUI page (twinning_kg.web.sparql) and replace execution.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from twinning_kg.config import Settings
from twinning_kg.query import guard as query_guard
from twinning_kg.query import sandbox
from twinning_kg.query.admission import PUBLIC, SITE, Lanes, Saturated
from twinning_kg.query.result_formats import (
    FALLBACK_GRAPH_MEDIA_TYPE,
    GRAPH_FORMATS,
    Choice,
    negotiate,
    without_xml,
    xml_forbidden,
    xml_refusal,
)
from twinning_kg.query.syntax import Budget

START_TIMEOUT = 60.0  # seconds a worker may take to open the store
DEFAULT_WORKER_MEMORY_MB = 2048  # heap cap per worker; a query needing more is stopped
GUARD_CACHE_SIZE = 256  # verdicts kept per worker (queries up to GUARD_CACHE_CHARS)
GUARD_CACHE_CHARS = 4096

log = logging.getLogger("twinning_kg.engine")

# A worker's reply: this header (lengths of the pickled metadata and of the body), the
# metadata (the reply tuple without the body), then the body bytes as they are.
_REPLY_HEADER = struct.Struct("!QQ")
_READ_CHUNK = 1 << 20
# Signals that mean the process itself faulted (a bug of the engine), not a limit we set.
_CRASH_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE})


class QueryError(Exception):
    """A query that cannot be answered; `status` is the HTTP status, `message` says why;
    `retry_after` (seconds) goes into the Retry-After header of a 429/503."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


@dataclass
class QueryRequest:
    query: str
    default_graph_uris: tuple[str, ...] = ()
    named_graph_uris: tuple[str, ...] = ()
    accept: str = "*/*"  # raw Accept header; the engine picks the result format
    # Who asks (the client address, see `admission`): /sparql sets it; None is the site itself
    # (its page queries), which runs in the reserved site lane.
    client: str | None = None


@dataclass
class QueryResult:
    form: str  # "SELECT" | "ASK" | "CONSTRUCT" | "DESCRIBE"
    media_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (optional)


class QueryEngine(Protocol):
    async def execute(self, request: QueryRequest) -> QueryResult: ...

    async def close(self) -> None: ...


def time_limit_error(timeout: float) -> QueryError:
    return QueryError(
        422,
        f"the query ran longer than the time limit of {timeout:g} s and was stopped; "
        "narrow it down (LIMIT, more specific patterns) or download the dumps",
    )


def busy_error(exc: Saturated) -> QueryError:
    return QueryError(429, exc.message, retry_after=exc.retry_after)


# --------------------------------------------------------------------------- worker side


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker is started with (pickled to the spawned process)."""

    store_path: str
    max_rows: int
    memory_mb: int
    isolation: str  # Settings.worker_isolation
    egress_socket: str | None  # the egress proxy's socket when federation is wanted
    allowlist: tuple[str, ...]
    base_iri: str
    budget: Budget


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


def _limit_memory(megabytes: int) -> None:
    """Cap the worker's heap (RLIMIT_DATA): a query that needs more aborts its own process
    instead of pushing the machine into swap. The store's memory-mapped files do not count."""
    if megabytes > 0:
        with contextlib.suppress(ValueError, OSError):
            limit = megabytes * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


class _Guard:
    """The guard as a worker runs it: verdicts of short queries cached (pages repeat theirs)."""

    def __init__(self, config: WorkerConfig, federation: str | None) -> None:
        self.config = config
        self.federation_refusal = federation  # None: SERVICE to the allow-list works
        # query -> QueryInfo, or (status, message) of a refusal (a fresh GuardError is raised
        # each time: re-raising one exception object would grow its traceback forever)
        self.cache: OrderedDict[str, query_guard.QueryInfo | tuple[int, str]] = OrderedDict()

    def check(self, query: str) -> query_guard.QueryInfo:
        verdict = self.cache.get(query)
        if verdict is None:
            try:
                verdict = query_guard.check(
                    query, self.config.allowlist, base_iri=self.config.base_iri, budget=self.config.budget
                )
            except query_guard.GuardError as exc:
                verdict = (exc.status, exc.message)
            if len(query) <= GUARD_CACHE_CHARS:
                self.cache[query] = verdict
                if len(self.cache) > GUARD_CACHE_SIZE:
                    self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(query)
        if isinstance(verdict, tuple):
            raise query_guard.GuardError(*verdict)
        if verdict.services and self.federation_refusal:
            raise query_guard.GuardError(403, self.federation_refusal)
        return verdict

    def route(self, iri: str) -> str:
        return sandbox.relay_url(self.config.allowlist.index(iri))


def _federation_refusal(level: str, config: WorkerConfig) -> str | None:
    if not config.allowlist:
        return None  # the guard refuses every SERVICE itself
    if level == "namespace" and config.egress_socket:
        return None
    return (
        "federated queries (SERVICE) are disabled on this server: its query workers cannot be "
        "isolated from the network on this host, and without that isolation no SERVICE call is made"
    )


def _worker_main(conn: Any, config: WorkerConfig) -> None:
    """Worker process: isolate, open the store read-only, answer jobs until the pipe closes."""
    sandbox.set_parent_death_signal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    relay_to = config.egress_socket if config.allowlist else None
    try:
        level, detail = sandbox.isolate(config.isolation, relay_to)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a message
        conn.send(("error", 0, f"cannot isolate the worker: {exc}"))
        return
    _limit_memory(config.memory_mb)
    try:
        import pyoxigraph

        store = pyoxigraph.Store.read_only(config.store_path)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a message
        conn.send(("error", 0, f"cannot open the store {config.store_path}: {exc}"))
        return
    guard = _Guard(config, _federation_refusal(level, config))
    conn.send(("ready", os.getpid(), f"{level}|{detail}"))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = _run_job(pyoxigraph, store, job, config.max_rows, guard)
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


def _run_job(ox: Any, store: Any, job: dict[str, Any], max_rows: int, guard: _Guard) -> tuple:
    try:
        info = guard.check(job["query"])
    except query_guard.GuardError as exc:
        return ("error", exc.status, exc.message)
    kwargs: dict[str, Any] = {}
    try:
        if job["default_graphs"] or job["named_graphs"]:
            # SPARQL 1.1 Protocol §2.1.4: a protocol dataset replaces the query's.
            kwargs["default_graph"] = [ox.NamedNode(u) for u in job["default_graphs"]]
            kwargs["named_graphs"] = [ox.NamedNode(u) for u in job["named_graphs"]]
        elif job["union"] and not info.has_dataset_clause:
            kwargs["use_default_graph_as_union"] = True
    except ValueError as exc:
        return ("error", 400, f"invalid graph IRI in default-graph-uri/named-graph-uri: {exc}")
    query = info.routed(guard.route)  # exactly what the guard read (see QueryInfo.routed)
    federated = bool(info.services)
    try:
        result = store.query(query, base_iri=job["base_iri"], **kwargs)
    except SyntaxError as exc:
        return ("error", 400, f"SPARQL syntax error: {_unroute(str(exc), guard)}")
    except OSError as exc:
        return _evaluation_error(info, exc, guard)
    try:
        if isinstance(result, ox.QueryBoolean):
            choice = negotiate("ASK", job["accept"])
            body = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            return ("ok", "ASK", choice.content_type, federated, body)
        if isinstance(result, ox.QuerySolutions):
            return _solutions(ox, result, job["accept"], max_rows, federated)
        return _triples(ox, result, info.form, job["accept"], max_rows, federated)
    except OSError as exc:
        return _evaluation_error(info, exc, guard)


def _unroute(message: str, guard: _Guard) -> str:
    """Put the allow-listed IRIs back where the engine's message names a relay URL."""
    for index, iri in enumerate(guard.config.allowlist):
        message = message.replace(sandbox.relay_url(index), iri)
    return message


def _evaluation_error(info: query_guard.QueryInfo, exc: Exception, guard: _Guard) -> tuple:
    if info.services:
        # Our data is local and read-only: an I/O error while a SERVICE is involved is
        # the remote service failing. 424 Failed Dependency (RFC 4918 §11.4) says the
        # query was fine but depended on something that failed; not a fault of ours (5xx).
        services = ", ".join(f"<{s}>" for s in dict.fromkeys(info.services))
        return (
            "error",
            424,
            f"the federated service {services} could not be queried: {_unroute(str(exc), guard)}",
        )
    return ("error", 400, f"query evaluation failed: {exc}")


def _solutions(ox: Any, solutions: Any, accept: str, max_rows: int, federated: bool) -> tuple:
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
        return ("ok", "SELECT", choice.content_type, federated, tsv)
    again = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
    body = again.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
    if choice.format == "XML" and (character := xml_forbidden(body)):
        other = without_xml("SELECT", accept)
        if other is None:
            return ("error", 406, xml_refusal(character, "SELECT"))
        choice = other
        again = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
        body = again.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
    return ("ok", "SELECT", choice.content_type, federated, body)


def _triples(ox: Any, triples: Any, form: str, accept: str, max_rows: int, federated: bool) -> tuple:
    form = form if form in ("CONSTRUCT", "DESCRIBE") else "CONSTRUCT"
    choice = negotiate(form, accept)
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
        choice = Choice(FALLBACK_GRAPH_MEDIA_TYPE, GRAPH_FORMATS[FALLBACK_GRAPH_MEDIA_TYPE], False)
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, choice.format))
    if choice.format == "RDF_XML" and (character := xml_forbidden(body)):
        other = without_xml(form, accept)
        if other is None:
            return ("error", 406, xml_refusal(character, form))
        choice = other
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, choice.format))
    return ("ok", form, choice.content_type, federated, body)


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
    def __init__(self, process: Any, conn: Any, pid: int, lane: str, isolation: str) -> None:
        self.process = process
        self.conn = conn
        self.pid = pid
        self.fd = conn.fileno()
        self.lane = lane
        self.level, _, self.isolation_detail = isolation.partition("|")


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
    """Query workers in two lanes over the release's pyoxigraph store (see module docstring)."""

    # The function a worker process runs (a class attribute so that a test can start
    # workers whose guard is switched off, to show what the isolation alone stops).
    worker_target = staticmethod(_worker_main)

    def __init__(
        self,
        store_path: Path | str,
        settings: Settings,
        *,
        union_default_graph: bool = True,
        memory_limit_mb: int = DEFAULT_WORKER_MEMORY_MB,
    ) -> None:
        """`memory_limit_mb`: heap cap per worker process (0: none)."""
        from twinning_kg.query.egress import EgressProxy  # only a server with federation needs it

        self.store_path = str(store_path)
        self.memory_limit_mb = int(memory_limit_mb)
        self.settings = settings
        self.union_default_graph = union_default_graph
        self._mp = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._all: set[_Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
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
            kind, pid, message = conn.recv()
        except EOFError as exc:
            raise RuntimeError(
                f"SPARQL worker exited during start-up (exit code {process.exitcode})"
            ) from exc
        if kind != "ready":
            process.join(5)
            raise RuntimeError(message)
        worker = _Worker(process, conn, pid, lane, message)
        with self._lock:
            self._all.add(worker)
        return worker

    def _bind(self) -> None:
        """On the first query: hand the started workers to the lanes, on this event loop."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            for worker in self._ready:
                self._lanes.add(worker)
            self._ready = []

    @property
    def worker_pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._all)

    def _discard(self, worker: _Worker) -> None:
        """Kill a worker (it overran or broke) and start a replacement in the background."""
        self._lanes.discard(worker)
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
        self._start_worker(worker.lane)

    def _start_worker(self, lane: str) -> None:
        """Start one more worker; it joins its lane once it has opened the store.

        The process is created here, on the event loop's thread, and only *waited for*
        in a helper thread: Linux's parent-death signal fires when the creating thread
        ends, so a worker must not be created by a short-lived thread.
        """
        if self._closed or self._loop is None:
            return
        try:
            spawned = self._spawn()
        except Exception:  # noqa: BLE001 - the lane stays smaller; the next discard retries
            log.exception("could not start a SPARQL worker")
            return
        loop = self._loop

        def arrived(fresh: _Worker | None) -> None:
            if fresh is None:
                return
            if sandbox.LEVELS.index(fresh.level) < sandbox.LEVELS.index(self.isolation):
                # Never run a worker less isolated than the engine promised: fail closed.
                log.error(
                    "a new SPARQL worker could not be isolated as the others (%s); it is not used",
                    fresh.isolation_detail,
                )
                self._terminate(fresh)
                return
            self._lanes.add(fresh)

        def wait_ready() -> None:
            try:
                fresh: _Worker | None = self._await_ready(*spawned, lane)
            except Exception:  # noqa: BLE001 - the lane stays smaller; the next discard retries
                log.exception("a SPARQL worker failed to start")
                fresh = None
            if fresh is not None and self._closed:
                self._terminate(fresh)
                fresh = None
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(arrived, fresh)

        threading.Thread(target=wait_ready, name="sparql-start", daemon=True).start()

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
        self.shutdown()

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
        job = {
            "query": request.query,
            "default_graphs": tuple(request.default_graph_uris),
            "named_graphs": tuple(request.named_graph_uris),
            "union": self.union_default_graph,
            "accept": request.accept,
            # Relative IRIs resolve against the dataset's base IRI, as in our data files.
            "base_iri": self.settings.base_iri,
        }
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
        if reply[0] == "ok":
            _kind, form, media_type, federated, body = reply
            # A federated answer is not tied to our release: no ETag/304, no caching.
            headers = {"Cache-Control": "no-store"} if federated else {}
            return QueryResult(form=form, media_type=media_type, body=body, headers=headers)
        _kind, status, message = reply
        raise QueryError(status, message)

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
