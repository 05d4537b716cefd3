"""The SPARQL 1.1 Protocol at `/sparql`: queries, the service description, the YASGUI page.

What we take from rdflib-endpoint: its service-description builder
(`SparqlRouter.prepare_sd_graph`) and its YASGUI page with one tab per example query
(adapted in `templates/sparql.html` to load only our own assets, in the site's layout and
language). What we replace: its request handler, which evaluates with rdflib on the
event loop and drops `default-graph-uri`/`named-graph-uri`; here the request is parsed
strictly by the protocol and handed to the query engine (worker processes running
pyoxigraph, or a remote store).

Negotiation follows the site's one policy (docs/web.md). Without a query, `/sparql` is
the service description (Turtle for `*/*`, any RDF syntax) or, for a browser, the YASGUI
page. A query's result is negotiated by the engine once it knows the query's form:
`?format=` (json, xml, csv, tsv; ttl, nt, jsonld, rdf) or Accept; a CONSTRUCT asked for as
SPARQL results, or a SELECT as Turtle, is 406 with the formats it has.

Under `serve --base-url` the endpoint speaks the server's public IRI space: IRIs in the
query and in `default-graph-uri`/`named-graph-uri` are read, and the result's written,
under the public base (`query.iri_space`), so whatever a client dereferenced it can
query with, and every graph the service description names is there.

Status codes: malformed request or query 400 (with the parser's message), two `query`
parameters 400, unsupported or missing Content-Type / non-UTF-8 charset 415, updates and
refused SERVICE 403, no acceptable format 406, limits (time, rows, query complexity,
memory, a crashed worker) 422, busy 429 with Retry-After, failing federated service
424. Nothing a client sends yields a 5xx; the one 5xx is 503 while the server is
shutting down. OPTIONS is 204 with `Allow`; other methods 405 with `Allow`.

Each query carries its client's address (the peer, or X-Forwarded-For from a
`--trusted-proxy`, see `admission`), which admission counts per client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, VOID
from rdflib_endpoint import SparqlRouter
from rdflib_endpoint.utils import FORMATS, SD
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from twinning_kg.config import DEFAULT_BASE_IRI
from twinning_kg.query.engine import QueryError, QueryRequest, graph_uris
from twinning_kg.query.negotiation import NegotiationError, Offer
from twinning_kg.query.result_formats import FORMAT_KEYS, accept_for_key
from twinning_kg.web.context import AppContext, context
from twinning_kg.web.i18n import Strings
from twinning_kg.web.rendering import language, render
from twinning_kg.web.responses import RDF_PAGE, VARY, negotiate, negotiation_failed, rdf, rdf_body
from twinning_kg.web.result_cache import Entry, cache_key

log = logging.getLogger("twinning_kg.sparql")

QUERIES_DIR = Path(__file__).resolve().parents[1] / "queries"
TITLE = "twinning-kg SPARQL endpoint"
DESCRIPTION = "Town twinning of Kassel (and the world's, in the same model) as linked open data."
ALLOW = "GET, HEAD, POST, OPTIONS"
# `?format=` of a query's result -> the media type it stands for (the site's one vocabulary).
RESULT_KEYS = {key: media for media, key in FORMAT_KEYS.items()}


class ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"Vary": "Accept"}
    if status in (429, 503):
        headers["Retry-After"] = str(retry_after or 5)
    return Response(
        message.rstrip() + "\n", status_code=status, media_type="text/plain; charset=utf-8", headers=headers
    )


def example_files(base_iri: str, directory: Path = QUERIES_DIR) -> list[tuple[str, str, str]]:
    """(file stem, title, query) of each `queries/*.rq`, in file order; the title is the
    first comment line.

    The files use the default base IRI so they run as they are elsewhere; a server whose
    IRIs live under another base (its release's, or its public `--base-url`) shows them
    with its own: our own files, so a plain replacement is exact.
    """
    examples = []
    for path in sorted(directory.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else ""
        title = first.lstrip("#").strip() if first.startswith("#") else path.stem.replace("-", " ")
        examples.append((path.stem, title, text.replace(DEFAULT_BASE_IRI, base_iri)))
    return examples


def load_examples(base_iri: str, directory: Path = QUERIES_DIR) -> dict[str, str]:
    """Example queries by their (English) title, in file order."""
    return {title: query for _stem, title, query in example_files(base_iri, directory)}


# ------------------------------------------------------------------ the protocol's parameters


def _split_media_type(value: str | None) -> tuple[str, dict[str, str]]:
    if not value:
        return "", {}
    media, *params = value.split(";")
    parsed = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed[key.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), parsed


def _decode_form(raw: bytes | str, what: str) -> list[tuple[str, str]]:
    """application/x-www-form-urlencoded, strictly UTF-8 (the protocol's encoding)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(400, f"the {what} is not UTF-8 form data: {exc}") from exc


async def protocol_params(request: Request) -> tuple[list[tuple[str, str]], bool]:
    """All protocol parameters (URL and body) as (name, value) pairs; and whether it is a POST."""
    params = _decode_form(request.scope.get("query_string", b""), "query string")
    if request.method != "POST":
        return params, False
    media, ctype_params = _split_media_type(request.headers.get("content-type"))
    body = await request.body()
    if media == "application/x-www-form-urlencoded":
        params += _decode_form(body, "request body")
    elif media == "application/sparql-query":
        charset = ctype_params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise ProtocolError(415, f"application/sparql-query must be UTF-8, not {charset}")
        try:
            params.append(("query", body.decode("utf-8")))
        except UnicodeDecodeError as exc:
            raise ProtocolError(400, f"the query is not valid UTF-8: {exc}") from exc
    elif media == "application/sparql-update":
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    elif not media:
        raise ProtocolError(
            415, "POST needs a Content-Type: application/x-www-form-urlencoded or application/sparql-query"
        )
    else:
        raise ProtocolError(
            415,
            f"unsupported Content-Type {media}: use application/x-www-form-urlencoded or "
            "application/sparql-query",
        )
    return params, True


def result_accept(accept: str | None, params: list[tuple[str, str]]) -> str:
    """The Accept the engine negotiates with: `?format=` (URL or form) wins over the header."""
    keys = [v for k, v in params if k == "format"]
    if not keys:
        return accept or "*/*"
    if len(keys) > 1:
        raise ProtocolError(400, f"at most one format parameter, got {len(keys)}")
    accept = accept_for_key(keys[0])
    if accept is None:
        raise ProtocolError(
            400, f"400 Bad Request: unknown format {keys[0]!r}; use one of: {', '.join(RESULT_KEYS)}"
        )
    return accept


# ------------------------------------------------------------------ service description


def service_description(ctx: AppContext, endpoint_url: str) -> Graph:
    """The SPARQL Service Description, built by rdflib-endpoint's builder and completed:
    the result formats we write, the VoID, the named graphs the release holds (in this
    server's IRI space) with their sizes."""
    holder = SimpleNamespace(
        service_description=Graph(),
        public_url=endpoint_url,
        title=TITLE,
        description=DESCRIPTION,
        enable_update=False,
        graph=Dataset(default_union=True),  # empty: only its flags are read
        functions={},
    )
    SparqlRouter.prepare_sd_graph(holder)  # type: ignore[arg-type] - duck-typed on purpose
    sd: Graph = holder.service_description
    service = next(sd.subjects(SD.endpoint, URIRef(endpoint_url)))
    # We accept no input (read-only): drop the inputFormat claims; list every result format.
    sd.remove((service, SD.inputFormat, None))
    for fmt in (FORMATS.SPARQL_Results_XML, FORMATS.SPARQL_Results_TSV, FORMATS.N_Triples, FORMATS.JSON_LD):
        sd.add((service, SD.resultFormat, fmt))
    if not ctx.settings.service_allowlist:
        sd.remove((service, SD.feature, SD.BasicFederatedQuery))
    void_url = URIRef(f"{ctx.public_base}.well-known/void")
    sd.bind("void", VOID)
    sd.add((service, RDFS.seeAlso, void_url))
    dataset = next(sd.objects(service, SD.defaultDataset))
    sd.add((dataset, RDFS.seeAlso, void_url))
    manifest = ctx.release.manifest
    default_graph = next(sd.objects(dataset, SD.defaultGraph))
    if "triples" in manifest:
        sd.add((default_graph, VOID.triples, Literal(int(manifest["triples"]))))
    for name, count in sorted((manifest.get("graphs") or {}).items()):
        named, g = BNode(), BNode()
        sd.add((dataset, SD.namedGraph, named))
        sd.add((named, RDF.type, SD.NamedGraph))
        sd.add((named, SD.name, URIRef(ctx.public(name))))
        sd.add((named, SD.graph, g))
        sd.add((g, RDF.type, SD.Graph))
        sd.add((g, VOID.triples, Literal(int(count))))
    return sd


def endpoint_url(ctx: AppContext, request: Request) -> str:
    """`sd:endpoint`: under `--base-url`, else where the request reached us when its Host
    names this server as configured, else the base IRI; never a forged Host (its value is
    the client's to choose: Host header injection). See `AppContext.request_base`."""
    return f"{ctx.request_base(request.scope)}sparql"


def describe_service(request: Request, offer: Offer) -> Response:
    ctx = context(request)
    if offer.key == "html":
        lang = language(request)
        return render(
            request, "sparql.html", lang=lang, title=Strings(lang).sparql_title, **yasgui(ctx, lang)
        )
    url = endpoint_url(ctx, request)
    body = ctx.memo(
        f"service description {url} {offer.key}", lambda: rdf_body(service_description(ctx, url), offer)
    )
    return rdf(Graph(), offer, body=body)


def yasgui(ctx: AppContext, lang: str) -> dict[str, object]:
    """What the YASGUI page shows besides the layout: the example tabs (titled in `lang`,
    IRIs in this server's IRI space) and the limits."""
    s = Strings(lang)
    examples = ctx.memo("examples", lambda: example_files(ctx.public_base))
    return {
        "examples": [
            {"name": s.get(f"example_{stem}", title), "query": query} for stem, title, query in examples
        ],
        "timeout": f"{ctx.settings.query_timeout:g}",
        "max_rows": ctx.settings.max_rows,
    }


# ------------------------------------------------------------------ queries


def query_request(
    ctx: AppContext, params: list[tuple[str, str]], accept: str | None, client: str
) -> QueryRequest | None:
    """The query a request's protocol parameters ask for; None when there is none (then a
    GET is the service description). Raises ProtocolError for a malformed request."""
    queries = [v for k, v in params if k == "query"]
    if any(k == "update" for k, _ in params):
        if queries:
            raise ProtocolError(400, "a request carries either a query or an update, not both")
        raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
    if len(queries) > 1:
        raise ProtocolError(400, f"exactly one query per request, got {len(queries)}")
    if not queries:
        return None
    return QueryRequest(
        query=queries[0],
        default_graph_uris=graph_uris(v for k, v in params if k == "default-graph-uri"),
        named_graph_uris=graph_uris(v for k, v in params if k == "named-graph-uri"),
        accept=result_accept(accept, params),
        # the peer, or X-Forwarded-For from a --trusted-proxy (uvicorn applied it)
        client=client,
        public_base=ctx.query_base,
    )


@dataclass(slots=True)
class Answered:
    """A query's answer, for either path to /sparql (`handle` and `web.sparql_lean`)."""

    status: int
    media_type: str
    body: bytes
    etag: str | None = None  # None: no validator (an error, a federated answer)
    cache: str | None = None  # "hit" | "miss" for answers; None for errors
    retry_after: int | None = None
    no_store: bool = False
    entry: Entry | None = None  # the result cache's entry, which keeps the gzip form

    def headers(self) -> dict[str, str]:
        if self.cache is None:  # an error
            headers = {"Vary": "Accept"}
            if self.status in (429, 503):
                headers["Retry-After"] = str(self.retry_after or 5)
            return headers
        headers = {"Vary": VARY, "X-Cache": self.cache}
        if self.no_store:
            headers["Cache-Control"] = "no-store"
        if self.etag is not None:
            headers["ETag"] = self.etag
        return headers

    def response(self) -> Response:
        headers = self.headers()
        return Response(self.body, status_code=self.status, media_type=self.media_type, headers=headers)


def _error(status: int, message: str, retry_after: int | None = None) -> Answered:
    body = (message.rstrip() + "\n").encode()
    return Answered(status, "text/plain; charset=utf-8", body, None, None, retry_after)


async def answer(ctx: AppContext, query: QueryRequest) -> Answered:
    """Answer `query` from the result cache (`web.result_cache`) or the engine."""
    release, cache = ctx.release, ctx.results
    cache.for_release(release.version)
    key = cache_key(query.query, query.default_graph_uris, query.named_graph_uris)
    entry = cache.get(key, query.accept)
    if entry is not None:
        return Answered(200, entry.media_type, entry.body, entry.etag, "hit", entry=entry)
    try:
        result = await ctx.engine.execute(query)
    except QueryError as exc:
        return _error(exc.status, exc.message, exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - a bug or a broken backend must not be a 500 page
        log.exception("query failed unexpectedly")
        return _error(422, f"the query could not be answered: {exc}")
    extra = getattr(result, "headers", {}) or {}
    if "no-store" in extra.get("Cache-Control", ""):  # federated: not tied to our release
        return Answered(200, result.media_type, result.body, None, "miss", no_store=True)
    stored = cache.put(release.version, key, query.accept, result.form, result.media_type, result.body)
    return Answered(200, result.media_type, result.body, stored.etag, "miss", entry=stored)


async def handle(request: Request) -> Response:
    ctx = context(request)
    try:
        params, is_post = await protocol_params(request)
        client = request.client.host if request.client else "-"
        query = query_request(ctx, params, request.headers.get("accept"), client)
        if query is None:
            if is_post:
                raise ProtocolError(400, "no query: send it as the 'query' parameter or as the body")
            try:
                return describe_service(request, negotiate(request, RDF_PAGE))
            except NegotiationError as exc:
                return negotiation_failed(request, exc)
    except ProtocolError as exc:
        return error_response(exc.status, exc.message)
    return (await answer(ctx, query)).response()


class Endpoint:
    """`/sparql` as a bare ASGI endpoint: every query passes here, so it skips the
    per-request handler wrapping of a framework route, which the profile of a
    point-lookup load showed on every request. The method check is ours: HEAD is GET
    without the body (RFC 9110 §9.3.2: same status and headers; the server leaves the
    body out), OPTIONS says what the resource allows (§9.3.7), other methods are 405."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD", "POST"):
            response = await handle(Request(scope, receive))
        elif method == "OPTIONS":
            response = Response(status_code=204, headers={"Allow": ALLOW})
        else:
            response = Response(
                f"405 Method Not Allowed: {method}; /sparql allows {ALLOW}\n",
                status_code=405,
                media_type="text/plain; charset=utf-8",
                headers={"Allow": ALLOW},
            )
        await response(scope, receive, send)
