"""The query execution contract: `QueryEngine`, what it is asked and what it answers.

Two engines implement it: `worker_pool.WorkerPoolEngine` (pyoxigraph's native engine in
isolated worker processes over the release's store) and `remote_engine.RemoteEngine`
(the same guard and limits in front of another SPARQL server). The web layer and the
server's life cycle (`commands/serve.py`, `web/release_keeper.py`) use nothing else.

Why not rdflib-endpoint's execution path: it evaluates with rdflib on the event loop
(one slow query blocks everybody, no time limit), ignores `default-graph-uri`, and
rdflib's engine fetches `FROM <url>`/`file:` and runs any SERVICE. We keep its
service description and YASGUI page (twinning_kg.web.sparql) and replace execution.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from twinning_kg.query.admission import Saturated


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
    accept: str = "*/*"  # raw Accept header; the engine picks the result format (`negotiation`)
    # Who asks (the client address, see `admission`): /sparql sets it; None is the site itself
    # (its page queries), which runs in the reserved site lane.
    client: str | None = None
    # The client's IRI space (`iri_space.IriSpace`, docs/web.md): with `serve --base-url`,
    # IRIs under this base in the query and the protocol dataset are read as the base
    # IRI's, and the answer's IRIs are written under it. None: as the data holds them.
    public_base: str | None = None


@dataclass
class QueryResult:
    form: str  # "SELECT" | "ASK" | "CONSTRUCT" | "DESCRIBE"
    media_type: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers (optional)


class QueryEngine(Protocol):
    """What the server needs from an engine, for queries and for its own life cycle."""

    async def execute(self, request: QueryRequest) -> QueryResult:
        """Answer one query, or raise `QueryError` (status and message for the client)."""
        ...

    def describe_isolation(self) -> str | None:
        """One line for the start-up message on how query code is cut off from the network;
        None when the engine runs no query code itself (a remote store)."""
        ...

    def stop_workers(self) -> None:
        """Stop running queries now, without waiting (the server was told to stop; safe in a
        signal handler): they end with 503 instead of holding the shutdown."""
        ...

    def shutdown(self) -> None:
        """Release what the engine holds (processes, threads), synchronously; idempotent.
        Called after the server stopped, when no event loop runs any more."""
        ...

    async def close(self) -> None:
        """`shutdown` from the event loop, without blocking it, plus any async resources."""
        ...


def time_limit_error(timeout: float) -> QueryError:
    return QueryError(
        422,
        f"the query ran longer than the time limit of {timeout:g} s and was stopped; "
        "narrow it down (LIMIT, more specific patterns) or download the dumps",
    )


def busy_error(exc: Saturated) -> QueryError:
    return QueryError(429, exc.message, retry_after=exc.retry_after)


def graph_uris(values: Iterable[str]) -> tuple[str, ...]:
    """Normalise repeated protocol parameters (order kept, duplicates dropped)."""
    return tuple(dict.fromkeys(v for v in values if v))
