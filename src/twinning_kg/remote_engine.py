"""`RemoteEngine`: the QueryEngine contract over an existing SPARQL 1.1 server (HTTP).

What stays ours, whatever store answers (`serve --store URL`):
- the guard (`engine.guard` -> `query_guard.check`) runs first: no update, no SERVICE
  outside the allow-list reaches the remote store;
- the time limit is the HTTP timeout *and* an overall deadline; when it passes we stop
  reading and answer 422 like the local engine (the remote store may still finish the
  query: stopping it is the remote store's business, e.g. its own timeout setting);
- the row cap: results are streamed as SPARQL TSV (SELECT) or N-Triples (graphs), one
  line per row/triple, and reading stops at the cap, so a huge result never gets buffered;
- content negotiation (`result_formats.negotiate`) and the serialisation: the TSV or
  N-Triples is re-serialised by pyoxigraph, so the bytes match the local engine's.

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

import httpx
import pyoxigraph as ox

from twinning_kg.config import Settings
from twinning_kg.engine import QueryError, QueryRequest, QueryResult, guard
from twinning_kg.result_formats import FALLBACK_GRAPH_MEDIA_TYPE, GRAPH_FORMATS, Choice, negotiate

GRAPH_LIST_TTL = 60.0
GRAPH_LIST_QUERY = "SELECT DISTINCT ?g WHERE { GRAPH ?g { } }"
TSV = "text/tab-separated-values"
NTRIPLES = "application/n-triples"
BOOLEAN = "application/sparql-results+json"


class _TooMany(Exception):
    pass


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

    async def close(self) -> None:
        await self._client.aclose()

    async def execute(self, request: QueryRequest) -> QueryResult:
        info = guard(request, self.settings)
        timeout = float(self.settings.query_timeout)
        try:
            return await asyncio.wait_for(self._execute(request, info.form, info.has_dataset_clause), timeout)
        except TimeoutError as exc:
            raise QueryError(
                422,
                f"the query ran longer than the time limit of {timeout:g} s and was stopped; "
                "narrow it down (LIMIT, more specific patterns) or download the dumps",
            ) from exc
        except httpx.TimeoutException as exc:
            raise QueryError(422, f"the store did not answer within the time limit of {timeout:g} s") from exc
        except httpx.HTTPError as exc:
            raise QueryError(
                502, f"the SPARQL store at {self.url} cannot be reached: {exc or type(exc).__name__}"
            ) from exc

    async def _execute(self, request: QueryRequest, form: str, has_dataset: bool) -> QueryResult:
        if request.default_graph_uris or request.named_graph_uris:
            default, named = request.default_graph_uris, request.named_graph_uris
        elif has_dataset:
            default, named = (), ()  # the query's FROM / FROM NAMED decide
        else:
            default = named = await self._all_graphs()
        data = [("query", request.query)]
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
            return QueryResult(
                "SELECT",
                choice.content_type,
                result.serialize(format=getattr(ox.QueryResultsFormat, choice.format)),
            )
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
