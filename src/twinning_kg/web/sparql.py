"""SPARQL 1.1 Protocol at `/sparql`: queries, service description, YASGUI.

What we take from rdflib-endpoint: its service-description builder
(`SparqlRouter.prepare_sd_graph`), its YASGUI page and example-query tabs (adapted in
`templates/sparql_yasgui.html` to load only our own assets), its content-type tables
(refined in `twinning_kg.query.result_formats`). What we replace: its request handler, which
evaluates with rdflib on the event loop and drops `default-graph-uri`/`named-graph-uri`;
here the request is parsed strictly by the protocol and handed to `ctx.engine`
(worker processes running pyoxigraph, or a remote store).

Status codes: malformed request or query 400 (with the parser's message), two `query`
parameters 400, unsupported or missing Content-Type / non-UTF-8 charset 415, updates and
refused SERVICE 403, a result only XML was acceptable for and XML cannot carry 406,
limits (time, rows, query complexity, memory, a crashed worker) 422, busy 429 with
Retry-After, failing federated service 424. Nothing a client sends yields a 5xx; the one
5xx is 503 while the server is shutting down.

Each query carries its client's address (the peer, or X-Forwarded-For from a
`--trusted-proxy`, see `admission`), which admission counts per client.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS, VOID
from rdflib_endpoint import SparqlRouter
from rdflib_endpoint.utils import FORMATS, SD
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from twinning_kg.config import DEFAULT_BASE_IRI
from twinning_kg.query.engine import QueryError, QueryRequest, graph_uris
from twinning_kg.query.result_formats import best_match
from twinning_kg.web.context import AppContext

log = logging.getLogger("twinning_kg.sparql")

QUERIES_DIR = Path(__file__).resolve().parent / "queries"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TITLE = "twinning-kg SPARQL endpoint"
DESCRIPTION = "Town twinning of Kassel (and the world's, in the same model) as linked open data."

# Service description representations: media type -> rdflib serializer name.
SD_FORMATS = {
    "text/turtle": "turtle",
    "application/rdf+xml": "xml",
    "application/ld+json": "json-ld",
    "application/n-triples": "nt",
    "application/x-turtle": "turtle",
    "application/json": "json-ld",
    "application/xml": "xml",
    "text/plain": "nt",
}
HTML_TYPES = ("text/html", "application/xhtml+xml")


class ProtocolError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after or 5)} if status in (429, 503) else None
    return Response(
        message.rstrip() + "\n", status_code=status, media_type="text/plain; charset=utf-8", headers=headers
    )


def load_examples(base_iri: str, directory: Path = QUERIES_DIR) -> dict[str, str]:
    """Example queries from `queries/*.rq` (file order), titled by their first comment line.

    The files use the default base IRI so they run as they are elsewhere; a release
    built with another base IRI gets them rewritten to its own.
    """
    examples: dict[str, str] = {}
    for path in sorted(directory.glob("*.rq")):
        text = path.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else ""
        title = first.lstrip("#").strip() if first.startswith("#") else path.stem.replace("-", " ")
        examples[title] = text.replace(DEFAULT_BASE_IRI, base_iri)
    return examples


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


class ServiceDescription:
    """The SPARQL Service Description, built once per endpoint URL by rdflib-endpoint's builder."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def graph(self, endpoint_url: str) -> Graph:
        settings = self.ctx.settings
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
        for fmt in (
            FORMATS.SPARQL_Results_XML,
            FORMATS.SPARQL_Results_TSV,
            FORMATS.N_Triples,
            FORMATS.JSON_LD,
        ):
            sd.add((service, SD.resultFormat, fmt))
        if not settings.service_allowlist:
            sd.remove((service, SD.feature, SD.BasicFederatedQuery))
        void_url = URIRef(f"{self.ctx.public_base}.well-known/void")
        sd.bind("void", VOID)
        sd.add((service, RDFS.seeAlso, void_url))
        dataset = next(sd.objects(service, SD.defaultDataset))
        sd.add((dataset, RDFS.seeAlso, void_url))
        manifest = self.ctx.release.manifest
        default_graph = next(sd.objects(dataset, SD.defaultGraph))
        if "triples" in manifest:
            sd.add((default_graph, VOID.triples, Literal(int(manifest["triples"]))))
        for name, count in sorted((manifest.get("graphs") or {}).items()):
            named, g = BNode(), BNode()
            sd.add((dataset, SD.namedGraph, named))
            sd.add((named, RDF.type, SD.NamedGraph))
            sd.add((named, SD.name, URIRef(name)))
            sd.add((named, SD.graph, g))
            sd.add((g, RDF.type, SD.Graph))
            sd.add((g, VOID.triples, Literal(int(count))))
        return sd

    def serialize(self, endpoint_url: str, media_type: str) -> bytes:
        # keyed by the release too: its counts are in the description, and a server whose
        # release vanished switches to another (web.release_keeper)
        return self._serialize(endpoint_url, media_type, self.ctx.release.version)

    @lru_cache(maxsize=32)  # noqa: B019 - one instance per app; a few trusted URLs, a few formats
    def _serialize(self, endpoint_url: str, media_type: str, _version: str) -> bytes:
        data = self.graph(endpoint_url).serialize(format=SD_FORMATS[media_type])
        return data.encode("utf-8") if isinstance(data, str) else data


def make_router(ctx: AppContext) -> APIRouter:
    router = APIRouter()
    sd = ServiceDescription(ctx)
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html"]))

    @lru_cache(maxsize=1)
    def yasgui_page() -> bytes:
        html = env.get_template("sparql_yasgui.html").render(
            title=TITLE,
            description=DESCRIPTION,
            static="/static",
            home="/",
            examples=[{"name": n, "query": q} for n, q in load_examples(ctx.base_iri).items()],
            timeout=f"{ctx.settings.query_timeout:g}",
            max_rows=ctx.settings.max_rows,
        )
        return html.encode("utf-8")

    def endpoint_url(request: Request) -> str:
        """`sd:endpoint`: under `--base-url`, else where the request reached us when its Host
        names this server as configured, else the base IRI; never a forged Host (its value is
        the client's to choose: Host header injection). See `AppContext.request_base`."""
        return f"{ctx.request_base(request.scope)}sparql"

    def describe_service(request: Request) -> Response:
        accept = request.headers.get("accept")
        media = best_match(accept, [*SD_FORMATS, *HTML_TYPES])
        if media in HTML_TYPES:
            return Response(yasgui_page(), media_type="text/html; charset=utf-8", headers={"Vary": "Accept"})
        media = media or "text/turtle"
        body = sd.serialize(endpoint_url(request), media)
        content_type = f"{media}; charset=utf-8" if media.startswith("text/") else media
        return Response(body, media_type=content_type, headers={"Vary": "Accept"})

    async def handle(request: Request) -> Response:
        try:
            params, is_post = await protocol_params(request)
            queries = [v for k, v in params if k == "query"]
            if any(k == "update" for k, _ in params):
                if queries:
                    raise ProtocolError(400, "a request carries either a query or an update, not both")
                raise ProtocolError(403, "this endpoint is read-only: SPARQL Update is not accepted")
            if len(queries) > 1:
                raise ProtocolError(400, f"exactly one query per request, got {len(queries)}")
            if not queries:
                if is_post:
                    raise ProtocolError(400, "no query: send it as the 'query' parameter or as the body")
                return describe_service(request)
            query_request = QueryRequest(
                query=queries[0],
                default_graph_uris=graph_uris(v for k, v in params if k == "default-graph-uri"),
                named_graph_uris=graph_uris(v for k, v in params if k == "named-graph-uri"),
                accept=request.headers.get("accept") or "*/*",
                # the peer, or X-Forwarded-For from a --trusted-proxy (uvicorn applied it)
                client=request.client.host if request.client else "-",
            )
        except ProtocolError as exc:
            return error_response(exc.status, exc.message)
        try:
            result = await ctx.engine.execute(query_request)
        except QueryError as exc:
            return error_response(exc.status, exc.message, exc.retry_after)
        except Exception as exc:  # noqa: BLE001 - a bug or a broken backend must not be a 500 page
            log.exception("query failed unexpectedly")
            return error_response(422, f"the query could not be answered: {exc}")
        headers = {"Vary": "Accept", **getattr(result, "headers", {})}
        return Response(result.body, media_type=result.media_type, headers=headers)

    endpoint = _LeanEndpoint(handle)
    for path in ("/sparql", "/sparql/"):
        router.routes.append(Route(path, endpoint, include_in_schema=False))
    return router


class _LeanEndpoint:
    """`/sparql` as a bare ASGI endpoint: every query passes here, so it skips FastAPI's
    per-request handler wrapping (parameter analysis, dependency exit stack), which the
    profile of a point-lookup load showed on every request. The method check is ours,
    with the answer FastAPI gives for a method a route does not have (405, `Allow`).
    HEAD is GET without the body (RFC 9110 §9.3.2): same status and headers; the server
    leaves the body out."""

    def __init__(self, handle) -> None:  # noqa: ANN001 - async (Request) -> Response
        self.handle = handle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD", "POST"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD, POST"})
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)
