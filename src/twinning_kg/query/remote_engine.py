"""`RemoteEngine`: the QueryEngine contract over an existing SPARQL 1.1 server (HTTP).

What stays ours, whatever store answers (`serve --store URL`):
- the guard (`query_guard.check`) runs first, in a thread off the event loop, under the
  query time limit and the same complexity budget as with local workers: no update, no
  SERVICE outside the allow-list, nothing it cannot analyse reaches the remote store;
- admission (`admission.Lanes`): the same per-client limits and immediate 429s, with
  `workers` slots for /sparql and `site_workers` for the pages;
- the time limit is the HTTP timeout *and* an overall deadline; when it passes we stop
  reading and answer 422 like the local engine (the remote store may still finish the
  query: stopping it is the remote store's business, e.g. its own timeout setting);
- the row cap: results are streamed as SPARQL TSV (SELECT) or N-Triples (graphs), one
  line per row/triple, and reading stops at the cap, so a huge result never gets buffered;
- content negotiation (`result_formats.negotiate`) and the serialisation: the TSV or
  N-Triples is re-serialised by pyoxigraph, so the bytes match the local engine's
  (including the refusal to write XML that XML 1.0 cannot carry).

What we cannot enforce here: the remote store makes SERVICE calls itself, from its own
network, so the allow-list rests on the guard alone (no egress proxy, no namespace);
whoever runs that store should give it the network policy of docs/security.md. A
SERVICE target is not rewritten either, since the store cannot reach our relay.

Dataset semantics: our contract says a query without a dataset sees the union of all
named graphs. Stores differ on that (Oxigraph's default graph is its own, Fuseki's is
configurable), so it is stated with the standard protocol instead: every named graph of
the store as `default-graph-uri` *and* `named-graph-uri` (SPARQL 1.1 Protocol §2.1.4),
which gives the union as default graph and keeps `GRAPH ?g` working. The list of graphs
is asked from the store and cached for `GRAPH_LIST_TTL` seconds (a re-publish shows up).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pyoxigraph as ox

from twinning_kg.config import Settings
from twinning_kg.query import guard as query_guard
from twinning_kg.query.admission import PUBLIC, SITE, Lanes, Saturated
from twinning_kg.query.engine import (
    QueryError,
    QueryRequest,
    QueryResult,
    busy_error,
    time_limit_error,
)
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

GRAPH_LIST_TTL = 60.0
GRAPH_LIST_QUERY = "SELECT DISTINCT ?g WHERE { GRAPH ?g { } }"
TSV = "text/tab-separated-values"
NTRIPLES = "application/n-triples"
BOOLEAN = "application/sparql-results+json"


class _TooMany(Exception):
    pass


@dataclass(eq=False)
class _Slot:
    lane: str


class _ThreadGuard:
    """The guard in a thread pool, under the time limit; verdicts of short queries cached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sparql-guard")
        self.cache: OrderedDict[str, query_guard.QueryInfo | query_guard.GuardError] = OrderedDict()

    async def check(self, query: str) -> query_guard.QueryInfo:
        verdict = self.cache.get(query)
        if verdict is None:
            timeout = float(self.settings.query_timeout)
            loop = asyncio.get_running_loop()
            try:
                verdict = await asyncio.wait_for(loop.run_in_executor(self.pool, self._check, query), timeout)
            except TimeoutError as exc:
                raise QueryError(
                    422, f"checking the query took longer than the time limit of {timeout:g} s"
                ) from exc
            if len(query) <= query_guard.GUARD_CACHE_CHARS:
                self.cache[query] = verdict
                if len(self.cache) > query_guard.GUARD_CACHE_SIZE:
                    self.cache.popitem(last=False)
        if isinstance(verdict, query_guard.GuardError):
            raise QueryError(verdict.status, verdict.message)
        return verdict

    def _check(self, query: str) -> query_guard.QueryInfo | query_guard.GuardError:
        settings = self.settings
        try:
            return query_guard.check(
                query, settings.service_allowlist, base_iri=settings.base_iri, budget=Budget.of(settings)
            )
        except query_guard.GuardError as exc:
            return exc

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RemoteEngine:
    """Forward guarded queries to the SPARQL query endpoint `url` (e.g. Oxigraph's `/query`)."""

    def __init__(self, url: str, settings: Settings, *, client: httpx.AsyncClient | None = None) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url}: a remote store must be an http(s) SPARQL endpoint URL")
        self.url = url
        self.settings = settings
        timeout = httpx.Timeout(
            float(settings.query_timeout), connect=min(10.0, float(settings.query_timeout))
        )
        self._client = client or httpx.AsyncClient(timeout=timeout, headers={"User-Agent": "twinning-kg"})
        self._graphs: tuple[str, ...] | None = None
        self._graphs_at = 0.0
        self._graphs_lock = asyncio.Lock()
        self._guard = _ThreadGuard(settings)
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
        self._slots = [_Slot(PUBLIC) for _ in range(workers)]
        self._slots += [_Slot(SITE) for _ in range(max(0, int(settings.site_workers)))]

    def describe_isolation(self) -> None:
        """No query code runs here: the remote store evaluates (and isolates) it."""
        return None

    def stop_workers(self) -> None:
        """Nothing runs here to stop: queries in flight end with the server's connections."""

    def shutdown(self) -> None:
        """Stop the guard's threads (the HTTP client is closed by `close`, on the loop)."""
        self._guard.close()

    async def close(self) -> None:
        self.shutdown()
        await self._client.aclose()

    async def execute(self, request: QueryRequest) -> QueryResult:
        info = await self._guard.check(request.query)
        if self._slots:
            for slot in self._slots:
                self._lanes.add(slot)
            self._slots = []
        try:
            slot = await self._lanes.acquire(request.client)
        except Saturated as exc:
            raise busy_error(exc) from exc
        try:
            return await self._timed(request, info)
        finally:
            self._lanes.release(slot)

    async def _timed(self, request: QueryRequest, info: query_guard.QueryInfo) -> QueryResult:
        timeout = float(self.settings.query_timeout)
        try:
            return await asyncio.wait_for(self._execute(request, info), timeout)
        except TimeoutError as exc:
            raise time_limit_error(timeout) from exc
        except httpx.TimeoutException as exc:
            raise QueryError(422, f"the store did not answer within the time limit of {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise QueryError(
                502, f"the SPARQL store at {self.url} cannot be reached: {exc or type(exc).__name__}"
            ) from exc

    async def _execute(self, request: QueryRequest, info: query_guard.QueryInfo) -> QueryResult:
        form = info.form
        if request.default_graph_uris or request.named_graph_uris:
            default, named = request.default_graph_uris, request.named_graph_uris
        elif info.has_dataset_clause:
            default, named = (), ()  # the query's FROM / FROM NAMED decide
        else:
            default = named = await self._all_graphs()
        # The text the guard read (\u escapes applied), so the store cannot read another query.
        data = [("query", info.text)]
        data += [("default-graph-uri", g) for g in default] + [("named-graph-uri", g) for g in named]
        max_rows = int(self.settings.max_rows)
        if form == "ASK":
            choice = negotiate("ASK", request.accept)
            body = await self._fetch(data, BOOLEAN, None)
            result = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
            return QueryResult(
                "ASK",
                choice.content_type,
                result.serialize(format=getattr(ox.QueryResultsFormat, choice.format)),
            )
        if form == "SELECT":
            choice = negotiate("SELECT", request.accept)
            body = await self._fetch(data, TSV, max_rows + 1)  # + the header line
            if choice.format == "TSV":
                return QueryResult("SELECT", choice.content_type, body)
            result = ox.parse_query_results(body, format=ox.QueryResultsFormat.TSV)
            out = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            if choice.format == "XML" and (character := xml_forbidden(out)):
                other = without_xml("SELECT", request.accept)
                if other is None:
                    raise QueryError(406, xml_refusal(character, "SELECT"))
                choice = other
                result = ox.parse_query_results(body, format=ox.QueryResultsFormat.TSV)
                out = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            return QueryResult("SELECT", choice.content_type, out)
        choice = negotiate(form, request.accept)
        body = await self._fetch(data, NTRIPLES, max_rows, what="triples")
        triples = list(ox.parse(body, format=ox.RdfFormat.N_TRIPLES))
        try:
            out = ox.serialize(triples, format=getattr(ox.RdfFormat, choice.format))
        except (ValueError, OSError) as exc:
            if choice.explicit:
                raise QueryError(406, f"this result cannot be written as {choice.media_type}: {exc}") from exc
            choice = Choice(FALLBACK_GRAPH_MEDIA_TYPE, GRAPH_FORMATS[FALLBACK_GRAPH_MEDIA_TYPE], False)
            out = ox.serialize(triples, format=getattr(ox.RdfFormat, choice.format))
        if choice.format == "RDF_XML" and (character := xml_forbidden(out)):
            other = without_xml(form, request.accept)
            if other is None:
                raise QueryError(406, xml_refusal(character, form))
            choice = other
            out = ox.serialize(triples, format=getattr(ox.RdfFormat, choice.format))
        return QueryResult(form, choice.content_type, out)

    async def _fetch(
        self, data: list[tuple[str, str]], accept: str, max_lines: int | None, what: str = "rows"
    ) -> bytes:
        """POST the query (SPARQL 1.1 Protocol §2.1.2), stream the answer, stop at the cap."""
        headers = {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}
        content = str(httpx.QueryParams(data)).encode()
        async with self._client.stream("POST", self.url, content=content, headers=headers) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace").strip()
                status = 400 if 400 <= response.status_code < 500 else 502
                raise QueryError(status, f"the SPARQL store answered {response.status_code}: {text[:2000]}")
            chunks: list[bytes] = []
            lines = 0
            async for chunk in response.aiter_bytes():
                lines += chunk.count(b"\n")
                if max_lines is not None and lines > max_lines:
                    raise QueryError(
                        422,
                        f"the result has more than {self.settings.max_rows} {what}, the limit of this "
                        "endpoint; add a LIMIT (and OFFSET to page) or download the dumps",
                    )
                chunks.append(chunk)
            return b"".join(chunks)

    async def _all_graphs(self) -> tuple[str, ...]:
        """The store's named graphs (cached): the union default graph of our contract."""
        async with self._graphs_lock:
            if self._graphs is None or time.monotonic() - self._graphs_at > GRAPH_LIST_TTL:
                body = await self._fetch([("query", GRAPH_LIST_QUERY)], TSV, None)
                rows = ox.parse_query_results(body, format=ox.QueryResultsFormat.TSV)
                self._graphs = tuple(
                    sorted(str(s["g"].value) for s in rows if isinstance(s["g"], ox.NamedNode))
                )
                self._graphs_at = time.monotonic()
            return self._graphs
