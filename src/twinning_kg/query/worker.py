"""A query worker process: isolate itself, open the release's store read-only, answer jobs.

Processes rather than threads because pyoxigraph cannot cancel a running query: the only
way to enforce a time limit (and to leave no runaway work eating a core) is to kill the
worker that overran and start a fresh one (`worker_pool`).

Inside a worker, in this order, each under the query's time limit (a worker that
overruns is killed, whatever it was doing):
1. the guard (`query_guard.check`, a linear reader of the whole query with a complexity
   budget): syntax errors 400, updates and SERVICE outside the allow-list 403, over
   budget 422. It runs here, off the server's event loop and out of its process, so
   checking a query can never freeze the server; a small cache spares repeated queries,
   and a plain query (`guard.plain`: one that cannot hold a SERVICE, a dataset clause
   or too much nesting, told from its text alone) runs without the full reading;
2. SERVICE targets the guard accepted are rewritten to the relay of the worker's own
   network namespace (`sandbox`), which leads to the egress proxy (`egress`): the
   worker itself can reach no network, so a query the guard misread calls nothing;
3. evaluation by pyoxigraph, and serialisation by its native writers, in the format the
   one negotiation policy chose (`result_formats`, `negotiation`): a result the client
   accepts no format of is refused with 406 before it is computed.

A job carrying the client's IRI space (`Job.public_base`, with `serve --base-url`) has
its public IRIs read as canonical by the guard, and its result's IRIs written under the
public base (`iri_space`): in the TSV intermediate for solutions, on the terms for graphs.

The row cap is checked without a Python loop over solutions: SELECT results are first
written as SPARQL TSV (one line per row, newlines inside literals are escaped) into a
writer that stops the serialiser as soon as the cap is passed; within the cap the TSV
is parsed back natively and re-serialised in the negotiated format; a JSON result whose
rows are bounded within the cap as it is written is kept as written (`_solutions`).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import resource
import signal
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twinning_kg.query import guard as query_guard
from twinning_kg.query import sandbox
from twinning_kg.query.iri_space import IriSpace
from twinning_kg.query.negotiation import NotAcceptable
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
from twinning_kg.query.worker_messages import Answer, Job, Ready, Refusal, Reply, StartFailed, send_reply


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


# Between two rows of SPARQL JSON results pyoxigraph writes `},{` (a row's closing brace,
# the comma, the next row's opening one), and nowhere else but inside literal text: a body
# holding n of them has at most n + 1 rows (`json_rows_bounded` checks the writer still does).
JSON_ROW_BOUNDARY = b"},{"


class _JsonRowBound:
    """A binary sink for SPARQL JSON that bounds the rows from above as they are written
    (`JSON_ROW_BOUNDARY`s + 1), and stops the serialiser once the bound passes `max_rows`."""

    def __init__(self, max_rows: int) -> None:
        self.max_rows = max_rows
        self.boundaries = 0
        self.tail = b""  # the last two bytes written: a boundary may straddle two writes
        self.chunks: list[bytes] = []
        self.exceeded = False

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self.boundaries += data.count(JSON_ROW_BOUNDARY) + (self.tail + data[:2]).count(JSON_ROW_BOUNDARY)
        self.tail = (self.tail + data[-2:])[-2:]
        if self.boundaries + 1 > self.max_rows:
            self.exceeded = True
            raise _RowCapExceeded()
        self.chunks.append(data)
        return len(data)

    def flush(self) -> None:
        pass


def _json_within_cap(ox: Any, solutions: Any, max_rows: int) -> bytes | None:
    """`solutions` as SPARQL JSON when its rows are bounded by `max_rows` on the way
    (`_JsonRowBound`); None when the bound passes it (the count then decides)."""
    writer = _JsonRowBound(max_rows)
    try:
        solutions.serialize(writer, format=ox.QueryResultsFormat.JSON)
    except Exception:
        if not writer.exceeded:
            raise
    return None if writer.exceeded else b"".join(writer.chunks)


@functools.cache
def json_rows_bounded(ox: Any) -> bool:
    """Whether pyoxigraph's JSON writer still separates rows as `_JsonRowBound` counts them
    (checked once per process; if not, every row cap is counted on TSV)."""
    cases = {"SELECT ?x WHERE { VALUES ?x { 1 2 3 } }": 2, "SELECT ?x WHERE { VALUES ?x { UNDEF UNDEF } }": 1}
    for query, boundaries in cases.items():
        body = ox.Store().query(query).serialize(format=ox.QueryResultsFormat.JSON)
        if body.count(JSON_ROW_BOUNDARY) != boundaries:
            return False
    return True


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
        # (query, public base) -> QueryInfo, or (status, message) of a refusal (a fresh
        # GuardError is raised each time: re-raising one exception object would grow its
        # traceback forever)
        self.cache: OrderedDict[tuple[str, str | None], query_guard.QueryInfo | tuple[int, str]] = (
            OrderedDict()
        )

    def check(self, query: str, iris: IriSpace | None = None) -> query_guard.QueryInfo:
        key = (query, iris.public if iris is not None else None)
        verdict = self.cache.get(key)
        if verdict is None:
            try:
                verdict = query_guard.check(
                    query,
                    self.config.allowlist,
                    base_iri=self.config.base_iri,
                    budget=self.config.budget,
                    iris=iris,
                )
            except query_guard.GuardError as exc:
                verdict = (exc.status, exc.message)
            if len(query) <= query_guard.GUARD_CACHE_CHARS:
                self.cache[key] = verdict
                if len(self.cache) > query_guard.GUARD_CACHE_SIZE:
                    self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(key)
        if isinstance(verdict, tuple):
            raise query_guard.GuardError(*verdict)
        if verdict.services and self.federation_refusal:
            raise query_guard.GuardError(403, self.federation_refusal)
        return verdict

    def plain(self, query: str) -> query_guard.QueryInfo | None:
        """The query as the engine may run it unread, when it is plain (`guard.plain`)."""
        return query_guard.plain(query, self.config.budget)

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


def worker_main(conn: Any, config: WorkerConfig) -> None:
    """Worker process: isolate, open the store read-only, answer jobs until the pipe closes."""
    sandbox.set_parent_death_signal()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle
    relay_to = config.egress_socket if config.allowlist else None
    try:
        level, detail = sandbox.isolate(config.isolation, relay_to)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a message
        conn.send(StartFailed(f"cannot isolate the worker: {exc}"))
        return
    _limit_memory(config.memory_mb)
    try:
        import pyoxigraph

        store = pyoxigraph.Store.read_only(config.store_path)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a message
        conn.send(StartFailed(f"cannot open the store {config.store_path}: {exc}"))
        return
    guard = _Guard(config, _federation_refusal(level, config))
    gc.freeze()  # the modules and the store live as long as the worker: no collection walks them
    conn.send(Ready(os.getpid(), level, detail))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = _run_job(pyoxigraph, store, job, config.max_rows, guard)
        except Exception as exc:  # noqa: BLE001 - never let a worker die on a bad query
            reply = Refusal(400, f"query failed: {exc}")
        try:
            send_reply(conn.fileno(), reply)
        except OSError:
            return


class _ReadFully(Exception):
    """The plain path cannot answer this query as the full guard would: read it in full."""


def _run_job(ox: Any, store: Any, job: Job, max_rows: int, guard: _Guard) -> Reply:
    iris = IriSpace(job.base_iri, job.public_base) if job.public_base else None
    if iris is None and (plain := guard.plain(job.query)) is not None:
        try:
            return _evaluate(ox, store, job, plain, max_rows, guard, None, plain=True)
        except _ReadFully:
            pass  # a syntax error, an update, a 406 or another form than guessed: as below
    try:
        info = guard.check(job.query, iris)
    except query_guard.GuardError as exc:
        return Refusal(exc.status, exc.message)
    except ValueError as exc:  # an IRI space that is not one (the server refuses it at start-up)
        return Refusal(400, str(exc))
    return _evaluate(ox, store, job, info, max_rows, guard, iris)


def _evaluate(
    ox: Any,
    store: Any,
    job: Job,
    info: query_guard.QueryInfo,
    max_rows: int,
    guard: _Guard,
    iris: IriSpace | None,
    plain: bool = False,
) -> Reply:
    """Run an accepted query and write its result. `plain`: `info` comes from
    `guard.plain`, whose form is a guess; whatever the full reading would answer
    otherwise (a refusal, a 406, another form) raises `_ReadFully` instead."""
    try:
        negotiate(info.form, job.accept)  # 406 before the work, not after it
    except NotAcceptable as exc:
        if plain:
            raise _ReadFully() from exc
        return Refusal(406, exc.message)
    kwargs: dict[str, Any] = {}
    default_graphs, named_graphs = job.default_graphs, job.named_graphs
    if iris is not None:
        default_graphs, named_graphs = iris.graph_names(default_graphs), iris.graph_names(named_graphs)
    try:
        if default_graphs or named_graphs:
            # SPARQL 1.1 Protocol §2.1.4: a protocol dataset replaces the query's.
            kwargs["default_graph"] = [ox.NamedNode(u) for u in default_graphs]
            kwargs["named_graphs"] = [ox.NamedNode(u) for u in named_graphs]
        elif job.union and not info.has_dataset_clause:
            kwargs["use_default_graph_as_union"] = True
    except ValueError as exc:
        return Refusal(400, f"invalid graph IRI in default-graph-uri/named-graph-uri: {exc}")
    query = info.routed(guard.route)  # exactly what the guard read (see QueryInfo.routed)
    federated = bool(info.services)

    def run() -> Any:
        return store.query(query, base_iri=job.base_iri, **kwargs)

    try:
        result = run()
    except SyntaxError as exc:
        if plain:
            raise _ReadFully() from exc
        return Refusal(400, f"SPARQL syntax error: {_unroute(str(exc), guard)}")
    except OSError as exc:
        return _evaluation_error(info, exc, guard)
    if plain and _form_of(ox, result) not in _FORMS_OF[info.form]:
        raise _ReadFully()
    try:
        if isinstance(result, ox.QueryBoolean):
            choice = negotiate("ASK", job.accept)
            body = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            return Answer("ASK", choice.content_type, federated, body)
        if isinstance(result, ox.QuerySolutions):
            return _solutions(ox, result, job.accept, max_rows, federated, iris, run)
        return _triples(ox, result, info.form, job.accept, max_rows, federated, iris)
    except OSError as exc:
        return _evaluation_error(info, exc, guard)


# The kind of result each query form gives (DESCRIBE and CONSTRUCT both give triples).
_FORMS_OF = {"ASK": ("ASK",), "SELECT": ("SELECT",), "CONSTRUCT": ("GRAPH",), "DESCRIBE": ("GRAPH",)}


def _form_of(ox: Any, result: Any) -> str:
    if isinstance(result, ox.QueryBoolean):
        return "ASK"
    if isinstance(result, ox.QuerySolutions):
        return "SELECT"
    return "GRAPH"


def _unroute(message: str, guard: _Guard) -> str:
    """Put the allow-listed IRIs back where the engine's message names a relay URL."""
    for index, iri in enumerate(guard.config.allowlist):
        message = message.replace(sandbox.relay_url(index), iri)
    return message


def _evaluation_error(info: query_guard.QueryInfo, exc: Exception, guard: _Guard) -> Refusal:
    if info.services:
        # Our data is local and read-only: an I/O error while a SERVICE is involved is
        # the remote service failing. 424 Failed Dependency (RFC 4918 §11.4) says the
        # query was fine but depended on something that failed; not a fault of ours (5xx).
        services = ", ".join(f"<{s}>" for s in dict.fromkeys(info.services))
        return Refusal(
            424,
            f"the federated service {services} could not be queried: {_unroute(str(exc), guard)}",
        )
    return Refusal(400, f"query evaluation failed: {exc}")


def _solutions(
    ox: Any,
    solutions: Any,
    accept: str,
    max_rows: int,
    federated: bool,
    iris: IriSpace | None,
    rerun: Callable[[], Any],
) -> Reply:
    """Solutions in the negotiated format, within the row cap.

    The cap is counted on SPARQL TSV, one line per row (module docstring). Most
    answers are JSON, and for those the TSV detour costs more than the query: the
    JSON is written directly while its rows are bounded from above on the way
    (`_JsonRowBound`), and kept when the bound stays within the cap; past it (a
    result over the cap, or literals full of `},{`), the query is `rerun` on the
    counted path, which stops after `max_rows` + 1 rows.
    """
    choice = negotiate("SELECT", accept)
    if choice.format == "JSON" and iris is None and not federated and json_rows_bounded(ox):
        direct = _json_within_cap(ox, solutions, max_rows)
        if direct is not None:
            return Answer("SELECT", choice.content_type, federated, direct)
        solutions = rerun()  # maybe over the cap: count it as below
    writer = _CappedWriter(max_rows + 1)  # + the header line
    try:
        solutions.serialize(writer, format=ox.QueryResultsFormat.TSV)
    except Exception:
        if not writer.exceeded:
            raise
    if writer.exceeded:
        return Refusal(422, _row_cap_message(max_rows))
    tsv = writer.getvalue()
    if iris is not None:
        tsv = iris.solutions_tsv(tsv)
    if choice.format == "TSV":
        return Answer("SELECT", choice.content_type, federated, tsv)
    again = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
    body = again.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
    if choice.format == "XML" and (character := xml_forbidden(body)):
        other = without_xml("SELECT", accept)
        if other is None:
            return Refusal(406, xml_refusal(character, "SELECT"))
        choice = other
        again = ox.parse_query_results(tsv, format=ox.QueryResultsFormat.TSV)
        body = again.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
    return Answer("SELECT", choice.content_type, federated, body)


def _triples(
    ox: Any, triples: Any, form: str, accept: str, max_rows: int, federated: bool, iris: IriSpace | None
) -> Reply:
    form = form if form in ("CONSTRUCT", "DESCRIBE") else "CONSTRUCT"
    choice = negotiate(form, accept)
    collected = []
    for triple in triples:
        collected.append(triple)
        if len(collected) > max_rows:
            return Refusal(422, _row_cap_message(max_rows, "triples"))
    if iris is not None:
        collected = iris.triples(ox, collected)
    try:
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, choice.format))
    except (ValueError, OSError) as exc:
        if choice.explicit:
            return Refusal(406, f"this result cannot be written as {choice.media_type}: {exc}")
        choice = Choice(FALLBACK_GRAPH_MEDIA_TYPE, GRAPH_FORMATS[FALLBACK_GRAPH_MEDIA_TYPE], False)
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, choice.format))
    if choice.format == "RDF_XML" and (character := xml_forbidden(body)):
        other = without_xml(form, accept)
        if other is None:
            return Refusal(406, xml_refusal(character, form))
        choice = other
        body = ox.serialize(collected, format=getattr(ox.RdfFormat, choice.format))
    return Answer(form, choice.content_type, federated, body)


def _row_cap_message(max_rows: int, what: str = "rows") -> str:
    return (
        f"the result has more than {max_rows} {what}, the limit of this endpoint; "
        "add a LIMIT (and OFFSET to page) or download the dumps"
    )

