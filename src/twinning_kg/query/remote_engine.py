"""`RemoteEngine`: the QueryEngine contract over an existing SPARQL 1.1 server (HTTP).

What stays ours, whatever store answers (`serve --store URL`):
- the guard (`query_guard.check`) runs first, in a thread off the event loop, under the
  query time limit and the same complexity budget as with local workers: no update, no
  SERVICE outside the allow-list, nothing it cannot analyse reaches the remote store;
  then `remote_guard.check`: nothing beyond the SPARQL the embedded engine speaks (a
  store's pragmas and SQL built-ins), no graph outside the release;
- admission (`admission.Lanes`): the same per-client limits and immediate 429s, with
  `workers` slots for /sparql and `site_workers` for the pages;
- the time limit is the HTTP timeout *and* an overall deadline; when it passes we stop
  reading and answer 422 like the local engine (the remote store may still finish the
  query: stopping it is the remote store's business, e.g. its own timeout setting);
- the row cap: results are streamed as SPARQL XML (SELECT; one `<result>` element per
  row) or N-Triples (graphs; one line per triple), and reading stops at the cap, so a
  huge result never gets buffered. A store that cut the result at a cap of its own says
  so (Virtuoso: `X-SPARQL-MaxRows`) and gets the same 422, never a silently short answer;
- content negotiation (`result_formats.negotiate`) and the serialisation: the XML or
  N-Triples is re-serialised by pyoxigraph, so the bytes match the local engine's
  (including the refusal to write XML that XML 1.0 cannot carry). (Not TSV, though it is
  cheaper: Virtuoso's TSV is not SPARQL 1.1 TSV, its IRIs and literals are both written
  as quoted strings.) Store quirks in the answers are undone by `remote_quirks`.

What we cannot enforce here: the remote store makes SERVICE calls itself, from its own
network, so the allow-list rests on the guard alone (no egress proxy, no namespace);
whoever runs that store should give it the network policy of docs/security.md. A
SERVICE target is not rewritten either, since the store cannot reach our relay.

Dataset semantics: our contract says a query without a dataset sees the union of all
named graphs. Stores differ on that (Oxigraph's default graph is its own, Fuseki's is
configurable, Virtuoso's is every graph it holds, its own system graphs included), so it
is stated with the standard protocol instead: every graph of the release as
`default-graph-uri` *and* `named-graph-uri` (SPARQL 1.1 Protocol §2.1.4), which gives
the union as default graph and keeps `GRAPH ?g` working. `serve --store` passes the
release's graphs (its manifest), so graphs the store holds for anything else stay out.
Without that list the store's named graphs are asked for and cached for
`GRAPH_LIST_TTL` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import pyoxigraph as ox

from twinning_kg.config import Settings
from twinning_kg.query import guard as query_guard
from twinning_kg.query import remote_guard, remote_quirks
from twinning_kg.query.admission import PUBLIC, SITE, Lanes, Saturated
from twinning_kg.query.engine import (
    QueryError,
    QueryRequest,
    QueryResult,
    busy_error,
    time_limit_error,
)
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
from twinning_kg.sources import untrusted_input

GRAPH_LIST_TTL = 60.0
# `GRAPH ?g { }` would be cheaper, but Virtuoso answers it with no graphs at all.
GRAPH_LIST_QUERY = "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }"
XML = "application/sparql-results+xml"
NTRIPLES = "application/n-triples"
BOOLEAN = "application/sparql-results+json"
# What marks one row in the stream: a `<result>` element; a non-empty N-Triples line.
# (Virtuoso ends its N-Triples with an empty line, which is no triple.)
ROW = re.compile(rb"<result[\s/>]")
TRIPLE = re.compile(rb"[^\n]\n")
STORE = "of the SPARQL store behind this endpoint"
NO_GRAPH = "urn:x-twinning-kg:no-graph"  # names an empty half of a protocol dataset


@dataclass(eq=False)
class _Slot:
    lane: str


class _ThreadGuard:
    """The guard in a thread pool, under the time limit; verdicts of short queries cached."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sparql-guard")
        # (query, public base) -> verdict
        self.cache: OrderedDict[tuple[str, str | None], query_guard.QueryInfo | query_guard.GuardError] = (
            OrderedDict()
        )

    async def check(self, query: str, iris: IriSpace | None = None) -> query_guard.QueryInfo:
        key = (query, iris.public if iris is not None else None)
        verdict = self.cache.get(key)
        if verdict is None:
            timeout = float(self.settings.query_timeout)
            loop = asyncio.get_running_loop()
            try:
                verdict = await asyncio.wait_for(
                    loop.run_in_executor(self.pool, self._check, query, iris), timeout
                )
            except TimeoutError as exc:
                raise QueryError(
                    422, f"checking the query took longer than the time limit of {timeout:g} s"
                ) from exc
            if len(query) <= query_guard.GUARD_CACHE_CHARS:
                self.cache[key] = verdict
                if len(self.cache) > query_guard.GUARD_CACHE_SIZE:
                    self.cache.popitem(last=False)
        if isinstance(verdict, query_guard.GuardError):
            raise QueryError(verdict.status, verdict.message)
        return verdict

    def _check(self, query: str, iris: IriSpace | None) -> query_guard.QueryInfo | query_guard.GuardError:
        settings = self.settings
        try:
            return query_guard.check(
                query,
                settings.service_allowlist,
                base_iri=settings.base_iri,
                budget=Budget.of(settings),
                iris=iris,
            )
        except query_guard.GuardError as exc:
            return exc

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class RemoteEngine:
    """Forward guarded queries to the SPARQL query endpoint `url` (e.g. Oxigraph's `/query`)."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        *,
        client: httpx.AsyncClient | None = None,
        graphs: Iterable[str] | None = None,
    ) -> None:
        """`graphs`: the graphs whose union is the default graph (the release's); None: ask the store."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url}: a remote store must be an http(s) SPARQL endpoint URL")
        self.url = url
        self.settings = settings
        timeout = httpx.Timeout(
            float(settings.query_timeout), connect=min(10.0, float(settings.query_timeout))
        )
        self._client = client or httpx.AsyncClient(timeout=timeout, headers={"User-Agent": "twinning-kg"})
        self._fixed_graphs = tuple(sorted(graphs)) if graphs is not None else None
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
        self._graph_cap_known = False
        self._graph_cap_value: int | None = None

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
        try:
            iris = IriSpace(self.settings.base_iri, request.public_base) if request.public_base else None
        except ValueError as exc:
            raise QueryError(400, str(exc)) from exc
        if iris is not None:
            request = dataclasses.replace(
                request,
                default_graph_uris=iris.graph_names(request.default_graph_uris),
                named_graph_uris=iris.graph_names(request.named_graph_uris),
            )
        info = await self._guard.check(request.query, iris)
        try:
            negotiate(info.form, request.accept)  # 406 before the store is asked
        except NotAcceptable as exc:
            raise QueryError(406, exc.message) from exc
        try:
            dataset = remote_guard.check(info.text, self._fixed_graphs, self.settings.base_iri)
        except remote_guard.RemoteRefusal as exc:
            raise QueryError(400, exc.message) from exc
        if self._slots:
            for slot in self._slots:
                self._lanes.add(slot)
            self._slots = []
        try:
            slot = await self._lanes.acquire(request.client)
        except Saturated as exc:
            raise busy_error(exc) from exc
        try:
            return await self._timed(request, info, dataset, iris)
        finally:
            self._lanes.release(slot)

    async def _timed(
        self,
        request: QueryRequest,
        info: query_guard.QueryInfo,
        dataset: remote_guard.QueryDataset | None,
        iris: IriSpace | None,
    ) -> QueryResult:
        timeout = float(self.settings.query_timeout)
        try:
            return await asyncio.wait_for(self._execute(request, info, dataset, iris), timeout)
        except TimeoutError as exc:
            raise time_limit_error(timeout) from exc
        except httpx.TimeoutException as exc:
            raise QueryError(422, f"the store did not answer within the time limit of {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise QueryError(
                502, f"the SPARQL store at {self.url} cannot be reached: {exc or type(exc).__name__}"
            ) from exc

    async def _execute(
        self,
        request: QueryRequest,
        info: query_guard.QueryInfo,
        dataset: remote_guard.QueryDataset | None,
        iris: IriSpace | None,
    ) -> QueryResult:
        form = info.form
        if request.default_graph_uris or request.named_graph_uris:
            default, named = self._protocol_dataset(request)
        elif dataset is not None:  # the query's FROM / FROM NAMED, said again (remote_guard.check_dataset)
            default, named = dataset.default or (NO_GRAPH,), dataset.named or (NO_GRAPH,)
        elif info.has_dataset_clause:
            default, named = (), ()  # the query's FROM / FROM NAMED decide
        else:
            default = named = await self._all_graphs()
        # The text the guard read (\u escapes applied), so the store cannot read another query.
        # Relative IRIs resolve against the dataset's base IRI, as on the embedded engine;
        # only when the query has no BASE: Virtuoso refuses a second BASE in the prologue.
        query = info.text
        if not remote_guard.has_base(query):
            query = f"BASE <{self.settings.base_iri}> {query}"
        data = [("query", query)]
        data += [("default-graph-uri", g) for g in default] + [("named-graph-uri", g) for g in named]
        max_rows = int(self.settings.max_rows)
        if form == "ASK":
            choice = negotiate("ASK", request.accept)
            body = await self._fetch(data, BOOLEAN, None, None)
            result = ox.parse_query_results(body, format=ox.QueryResultsFormat.JSON)
            return QueryResult(
                "ASK",
                choice.content_type,
                result.serialize(format=getattr(ox.QueryResultsFormat, choice.format)),
            )
        if form == "SELECT":
            choice = negotiate("SELECT", request.accept)
            fetched = await self._fetch(data, XML, ROW, max_rows)
            body = self._checked_xml(remote_quirks.fix_xml_results(fetched))
            body_format = ox.QueryResultsFormat.XML
            if iris is not None:  # our IRIs under the public base: on the TSV form's terms
                tsv = ox.parse_query_results(body, format=body_format).serialize(
                    format=ox.QueryResultsFormat.TSV
                )
                body, body_format = iris.solutions_tsv(tsv), ox.QueryResultsFormat.TSV
            result = ox.parse_query_results(body, format=body_format)
            out = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            if choice.format == "XML" and (character := xml_forbidden(out)):
                other = without_xml("SELECT", request.accept)
                if other is None:
                    raise QueryError(406, xml_refusal(character, "SELECT"))
                choice = other
                result = ox.parse_query_results(body, format=body_format)
                out = result.serialize(format=getattr(ox.QueryResultsFormat, choice.format))
            return QueryResult("SELECT", choice.content_type, out)
        choice = negotiate(form, request.accept)
        store_cap = await self._graph_cap()
        body = await self._fetch(data, NTRIPLES, TRIPLE, max_rows, what="triples")
        if store_cap is not None and len(TRIPLE.findall(body)) >= store_cap:
            raise QueryError(422, self._cap_message(store_cap, "triples", STORE))
        triples = remote_quirks.fix_triples(
            [
                ox.Triple(q.subject, q.predicate, q.object)
                for q in ox.parse(body, format=ox.RdfFormat.N_TRIPLES)
            ]
        )
        if iris is not None:
            triples = iris.triples(ox, triples)
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

    def _checked_xml(self, body: bytes) -> bytes:
        """The store's SPARQL XML, refused if it carries a DTD: Oxigraph's XML reader expands
        declared entities, and a store is another server, not our code (docs/security.md)."""
        try:
            untrusted_input.check_xml(body, self.url)
        except untrusted_input.UntrustedInputError as exc:
            raise QueryError(502, f"the SPARQL store's answer was refused: {exc}") from exc
        return body

    def _protocol_dataset(self, request: QueryRequest) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The client's default-graph-uri/named-graph-uri as the embedded engine reads them.

        A graph the release does not hold is an empty graph (not the store's graph of that
        name: its system graphs, or anyone else's in a shared store, stay out), and a half
        the client left out is empty (SPARQL 1.1 Protocol §2.1.4), where Virtuoso would read
        a missing named-graph-uri as "every graph I hold". Empty is said with a graph IRI
        that exists nowhere.
        """
        default, named = tuple(request.default_graph_uris), tuple(request.named_graph_uris)
        if self._fixed_graphs is not None:
            default = tuple(g for g in default if g in self._fixed_graphs)
            named = tuple(g for g in named if g in self._fixed_graphs)
        return default or (NO_GRAPH,), named or (NO_GRAPH,)

    async def _fetch(
        self,
        data: list[tuple[str, str]],
        accept: str,
        row: re.Pattern[bytes] | None,
        max_rows: int | None,
        what: str = "rows",
    ) -> bytes:
        """POST the query (SPARQL 1.1 Protocol §2.1.2), stream the answer, stop at the cap.

        `row` matches what marks one row in the body; the count runs over the chunk
        boundaries (the last few bytes of a chunk are read again with the next one).
        """
        headers = {"Accept": accept, "Content-Type": "application/x-www-form-urlencoded"}
        content = str(httpx.QueryParams(data)).encode()
        async with self._client.stream("POST", self.url, content=content, headers=headers) as response:
            if response.status_code != 200:
                text = (await response.aread()).decode("utf-8", "replace").strip()
                status = remote_quirks.error_status(response.status_code, text) or 502
                if status == 422:
                    raise QueryError(
                        422,
                        "the SPARQL store stopped the query at its own time limit; narrow it down "
                        "(LIMIT, more specific patterns) or download the dumps "
                        f"({text.splitlines()[0][:300]})",
                    )
                raise QueryError(status, f"the SPARQL store answered {response.status_code}: {text[:2000]}")
            self._refuse_partial(response, what)
            chunks: list[bytes] = []
            rows, tail, keep = 0, b"", 7  # 7: one byte less than the longest row marker
            async for chunk in response.aiter_bytes():
                if row is not None and max_rows is not None:
                    window = tail + chunk
                    rows += sum(1 for m in row.finditer(window) if m.end() > len(tail))
                    tail = window[-keep:]
                    if rows > max_rows:
                        raise QueryError(422, self._cap_message(self.settings.max_rows, what))
                chunks.append(chunk)
            return b"".join(chunks)

    def _refuse_partial(self, response: httpx.Response, what: str) -> None:
        """A 200 that the store says is incomplete is not an answer (Virtuoso's headers)."""
        if "x-sparql-maxrows" in response.headers:  # cut at its ResultSetMaxRows
            store_cap = response.headers["x-sparql-maxrows"]
            if store_cap.isdigit() and int(store_cap) >= self.settings.max_rows:
                raise QueryError(422, self._cap_message(self.settings.max_rows, what))
            raise QueryError(422, self._cap_message(store_cap, what, STORE))
        if response.headers.get("x-sql-state", "").upper() == "S1TAT":  # "anytime" partial result
            raise QueryError(
                422,
                "the SPARQL store stopped the query at its own time limit and had only part of the "
                "answer; narrow it down (LIMIT, more specific patterns) or download the dumps",
            )

    @staticmethod
    def _cap_message(cap: object, what: str, whose: str = "of this endpoint") -> str:
        more = "more than" if whose == "of this endpoint" else "at least"
        return (
            f"the result has {more} {cap} {what}, the limit {whose}; "
            "add a LIMIT (and OFFSET to page) or download the dumps"
        )

    async def _graph_cap(self) -> int | None:
        """The store's own cap on results when it is at or below ours, else None.

        Virtuoso cuts CONSTRUCT/DESCRIBE results at its ResultSetMaxRows *without* saying
        so; for SELECT it sends X-SPARQL-MaxRows. So the engine asks once for one row more
        than our cap, from a cross join of whatever the store holds by default (only the
        headers are read): a cap the store names there holds for graph results too, and a
        graph result that reaches it is refused (422) rather than passed on short.
        """
        async with self._graphs_lock:
            if not self._graph_cap_known:
                rows = int(self.settings.max_rows) + 1
                query = f"SELECT ?s WHERE {{ ?s ?p ?o . ?a ?b ?c }} LIMIT {rows}"
                headers = {"Accept": XML, "Content-Type": "application/x-www-form-urlencoded"}
                content = str(httpx.QueryParams({"query": query})).encode()
                async with self._client.stream("POST", self.url, content=content, headers=headers) as answer:
                    cap = answer.headers.get("x-sparql-maxrows", "")
                self._graph_cap_value = int(cap) if cap.isdigit() and int(cap) < rows else None
                self._graph_cap_known = True
            return self._graph_cap_value

    async def _all_graphs(self) -> tuple[str, ...]:
        """The release's graphs, else the store's named graphs (cached): the union default graph."""
        if self._fixed_graphs is not None:
            return self._fixed_graphs
        async with self._graphs_lock:
            if self._graphs is None or time.monotonic() - self._graphs_at > GRAPH_LIST_TTL:
                body = await self._fetch([("query", GRAPH_LIST_QUERY)], XML, None, None)
                rows = ox.parse_query_results(
                    self._checked_xml(remote_quirks.fix_xml_results(body)), format=ox.QueryResultsFormat.XML
                )
                self._graphs = tuple(
                    sorted(str(s["g"].value) for s in rows if isinstance(s["g"], ox.NamedNode))
                )
                self._graphs_at = time.monotonic()
            return self._graphs
