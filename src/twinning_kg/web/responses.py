"""How every route answers: its representations, the negotiated choice, error pages, RDF.

The policy is `query.negotiation`'s (docs/web.md); this module holds the offers of each
kind of resource, in the one server order (data first, then the page):

- `RDF_PAGE`: an RDF document that also has a page: `/doc/…`, `/ontology`, `/catalog`,
  `/.well-known/void`; the service description at `/sparql` (its page is YASGUI);
- `PAGE`: only a page: `/`, `/about`, `/dumps/`;
- `/audit` has JSON, the page and plain text (`views.audit_page`);
- SPARQL results are negotiated by the engine, which knows the query's form
  (`query.result_formats`).

Errors are pages too: HTML for a client that prefers HTML, else plain text; never a
406 for an error (RFC 9110 §15.5.7 lets an error answer in what the client did not ask for).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from rdflib import Graph
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from twinning_kg.query.negotiation import (
    NegotiationError,
    NotAcceptable,
    Offer,
    UnknownFormat,
    available,
    choose,
)
from twinning_kg.web.i18n import Strings
from twinning_kg.web.rendering import language, render

log = logging.getLogger(__name__)

VARY = "Accept, Accept-Language"
HTML = Offer("text/html", "html", also=("application/xhtml+xml",))
TURTLE = Offer("text/turtle", "ttl", also=("application/x-turtle", "text/n3"))
N_TRIPLES = Offer("application/n-triples", "nt", also=("text/plain",))
JSON_LD = Offer("application/ld+json", "jsonld", also=("application/json",))
RDF_XML = Offer("application/rdf+xml", "rdf", also=("application/xml", "text/xml"))
RDF = (TURTLE, N_TRIPLES, JSON_LD, RDF_XML)
RDF_PAGE = (*RDF, HTML)
PAGE = (HTML,)
# rdflib serializer of each RDF offer
SERIALIZERS = {"ttl": "turtle", "nt": "nt", "jsonld": "json-ld", "rdf": "xml"}
_TEXT = Offer("text/plain", "text")


def negotiate(request: Request, offers: Sequence[Offer]) -> Offer:
    """The representation this request gets (`?format=`, else Accept); raises
    `NegotiationError` (400 unknown format, 406 nothing acceptable)."""
    return choose(offers, request.headers.get("accept"), request.query_params.get("format"))


def wants_html(request: Request) -> bool:
    """Would this request take a page rather than text, had the resource both?"""
    try:
        return negotiate(request, (_TEXT, HTML)).key == "html"
    except NegotiationError:
        return False


def error(
    request: Request,
    status: int,
    title_key: str,
    text_key: str,
    detail: str = "",
    extra: Sequence[str] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error as a page of the site or as plain text, in the request's language."""
    answer_headers = {"Vary": VARY, **(headers or {})}
    if wants_html(request):
        return render(
            request,
            "error.html",
            status=status,
            headers=answer_headers,
            status_code=status,
            title_key=title_key,
            text_key=text_key,
            detail=detail,
            extra=list(extra),
        )
    s = Strings(language(request))
    body = f"{status} {s[title_key]}: {s[text_key]}"
    body += f" {', '.join(extra)}" if extra else ""
    body += f"\n{detail}\n" if detail else "\n"
    return PlainTextResponse(body, status_code=status, headers=answer_headers)


def negotiation_failed(request: Request, exc: NegotiationError) -> Response:
    """400 for an unknown `?format=`, 406 when nothing acceptable: both list what there is."""
    if isinstance(exc, NotAcceptable):
        return error(request, 406, "not_acceptable", "not_acceptable_text", extra=[available(exc.offers)])
    key = exc.key if isinstance(exc, UnknownFormat) else ""
    return error(
        request,
        400,
        "bad_request",
        "unknown_format_text",
        detail=f"?format={key}",
        extra=[available(exc.offers)],
    )


def engine_failed(request: Request, exc: Exception) -> Response:
    """The query engine did not answer: 503 with its reason, never a 500."""
    log.warning("page %s: engine failed: %s", request.url.path, exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return error(
        request, 503, "unavailable", "unavailable_text", detail=message, headers={"Retry-After": "5"}
    )


def not_found(request: Request, what: str) -> Response:
    return error(request, 404, "not_found", "not_found_text", detail=what)


def rdf_body(graph: Graph, offer: Offer) -> bytes:
    """`graph` in the RDF syntax of `offer`; JSON-LD compacted with the graph's prefixes
    (those its IRIs use). Raises what rdflib raises for a graph the syntax cannot express."""
    options = {}
    if offer.key == "jsonld":
        used = {str(t) for triple in graph for t in triple}
        prefixes = {
            p: str(ns) for p, ns in graph.namespaces() if p and any(i.startswith(str(ns)) for i in used)
        }
        options = {"context": prefixes, "auto_compact": True}
    return graph.serialize(format=SERIALIZERS[offer.key or "ttl"], encoding="utf-8", **options)


def rdf(
    graph: Graph, offer: Offer, headers: Mapping[str, str] | None = None, body: bytes | None = None
) -> Response:
    """The RDF answer: `body` (when already serialized) or `graph` in `offer`'s syntax."""
    if body is None:
        try:
            body = rdf_body(graph, offer)
        except Exception as exc:  # noqa: BLE001 - e.g. an IRI RDF/XML cannot express
            return PlainTextResponse(
                f"406 Not Acceptable: cannot write this description as {offer.media_type}: {exc}\n",
                status_code=406,
                headers={"Vary": VARY},
            )
    return Response(body, media_type=offer.content_type, headers={"Vary": VARY, **(headers or {})})
