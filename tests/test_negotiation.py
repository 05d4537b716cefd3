"""One content-negotiation policy on every route (docs/web.md), in one table.

Each row: a route, an Accept header (or `?format=`), and the status and media type the
answer must have. The same header gets the same class of answer everywhere: `*/*` and
no Accept the data (HTML only where a page is all there is), a browser the page, a type
nobody offers 406 with the list of what there is. SPARQL results follow the protocol's
defaults and are 406 when the query's form has no such format.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from starlette.testclient import TestClient

from twinning_kg.query.negotiation import (
    ANY,
    EXACT,
    SUBTYPE_WILDCARD,
    NotAcceptable,
    Offer,
    UnknownFormat,
    choose,
    parse_accept,
    ranked,
)

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
HTML, TTL, NT, JSONLD, RDFXML = (
    "text/html", "text/turtle", "application/n-triples", "application/ld+json", "application/rdf+xml",
)
XML_RESULTS, JSON_RESULTS = "application/sparql-results+xml", "application/sparql-results+json"
TEXT = "text/plain"
SELECT = "/sparql?" + urlencode({"query": "SELECT ?s WHERE { ?s ?p ?o } LIMIT 1"})
ASK = "/sparql?" + urlencode({"query": "ASK { ?s ?p ?o }"})
CONSTRUCT = "/sparql?" + urlencode({"query": "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 1"})
NO_ACCEPT = None

# Accept header -> (status, media type) on a resource with data and a page (RDF first).
RDF_AND_PAGE = {
    NO_ACCEPT: (200, TTL),
    "*/*": (200, TTL),
    BROWSER: (200, HTML),
    "text/html": (200, HTML),
    "application/xhtml+xml": (200, HTML),
    "text/turtle": (200, TTL),
    "application/x-turtle": (200, TTL),
    "application/ld+json": (200, JSONLD),
    "application/json": (200, JSONLD),
    "application/rdf+xml": (200, RDFXML),
    "application/n-triples": (200, NT),
    "text/*": (200, TTL),
    "application/*": (200, NT),
    "text/html;q=0, */*": (200, TTL),
    "text/turtle;q=0, */*;q=0.5": (200, NT),
    "text/html, text/turtle;q=0.9": (200, HTML),
    "text/turtle;q=0.5, text/html": (200, HTML),
    "image/png": (406, TEXT),
    "text/html;q=0": (406, TEXT),
    "application/sparql-results+json": (406, TEXT),
}
# ... on a resource that is only a page
PAGE_ONLY = {
    NO_ACCEPT: (200, HTML),
    "*/*": (200, HTML),
    BROWSER: (200, HTML),
    "text/html": (200, HTML),
    "text/*": (200, HTML),
    "text/turtle": (406, TEXT),
    "image/png": (406, TEXT),
    "text/html;q=0, */*": (406, TEXT),
}
AUDIT = {
    NO_ACCEPT: (200, "application/json"),
    "*/*": (200, "application/json"),
    BROWSER: (200, HTML),
    "text/html": (200, HTML),
    "text/plain": (200, TEXT),
    "text/*": (200, HTML),
    "application/json": (200, "application/json"),
    "text/html;q=0, */*": (200, "application/json"),
    "text/turtle": (406, TEXT),
    "image/png": (406, TEXT),
}
SELECT_RESULTS = {
    NO_ACCEPT: (200, XML_RESULTS),
    "*/*": (200, XML_RESULTS),
    BROWSER: (200, "application/xml"),
    JSON_RESULTS: (200, JSON_RESULTS),
    "text/csv": (200, "text/csv"),
    "text/tab-separated-values": (200, "text/tab-separated-values"),
    "text/*": (200, "text/csv"),
    f"{XML_RESULTS};q=0, */*": (200, JSON_RESULTS),
    "text/html": (406, TEXT),
    "text/turtle": (406, TEXT),
    "application/rdf+xml": (406, TEXT),
    "image/png": (406, TEXT),
}
ASK_RESULTS = {
    NO_ACCEPT: (200, XML_RESULTS),
    JSON_RESULTS: (200, JSON_RESULTS),
    "text/csv": (406, TEXT),  # CSV/TSV have no boolean form
    "text/turtle": (406, TEXT),
}
GRAPH_RESULTS = {
    NO_ACCEPT: (200, RDFXML),
    "*/*": (200, RDFXML),
    BROWSER: (200, "application/xml"),
    "text/turtle": (200, TTL),
    "application/ld+json": (200, JSONLD),
    "text/*": (200, TTL),
    f"{RDFXML};q=0, application/xml;q=0, text/xml;q=0, */*": (200, TTL),
    XML_RESULTS: (406, TEXT),
    JSON_RESULTS: (406, TEXT),
    "text/html": (406, TEXT),
}
# An error is never a 406: a page for a client that prefers HTML, else plain text.
ERROR = {
    NO_ACCEPT: (404, TEXT),
    "*/*": (404, TEXT),
    BROWSER: (404, HTML),
    "text/html": (404, HTML),
    "text/turtle": (404, TEXT),
    "image/png": (404, TEXT),
}
TABLE = {
    "/doc/place/kassel": RDF_AND_PAGE,
    "/ontology": RDF_AND_PAGE,
    "/catalog": RDF_AND_PAGE,
    "/.well-known/void": RDF_AND_PAGE,
    "/sparql": RDF_AND_PAGE,  # the service description; its page is YASGUI
    "/": PAGE_ONLY,
    "/about": PAGE_ONLY,
    "/dumps/": PAGE_ONLY,
    "/audit": AUDIT,
    SELECT: SELECT_RESULTS,
    ASK: ASK_RESULTS,
    CONSTRUCT: GRAPH_RESULTS,
    "/doc/place/atlantis": ERROR,
    "/no/such/page": ERROR,
}
ROWS = [(route, accept, *answer) for route, answers in TABLE.items() for accept, answer in answers.items()]


@pytest.mark.parametrize(("route", "accept", "status", "media_type"), ROWS)
def test_negotiation_table(
    app: TestClient, route: str, accept: str | None, status: int, media_type: str
) -> None:
    response = app.get(route, headers={"Accept": accept} if accept is not None else {})
    assert response.status_code == status, (route, accept, response.text[:300])
    assert response.headers["content-type"].split(";")[0] == media_type, (route, accept)
    assert "accept" in [v.strip().lower() for v in response.headers["vary"].split(",")], (route, accept)
    if status == 406:
        # the answer says what there is
        assert "Available" in response.text or "available" in response.text, response.text
        if route in ("/doc/place/kassel", "/catalog"):
            for offered in (TTL, NT, JSONLD, RDFXML, HTML):
                assert offered in response.text, (route, offered)


# ?format= wins over Accept on every route that has representations to choose from.
FORMAT_ROWS = [
    ("/doc/place/kassel", "ttl", "text/html", TTL),
    ("/doc/place/kassel", "html", "text/turtle", HTML),
    ("/ontology", "jsonld", "text/html", JSONLD),
    ("/catalog", "rdf", "text/html", RDFXML),
    ("/.well-known/void", "nt", "text/html", NT),
    ("/sparql", "html", "text/turtle", HTML),
    ("/sparql", "ttl", BROWSER, TTL),
    ("/audit", "json", "text/html", "application/json"),
    ("/audit", "text", "text/html", TEXT),
    ("/audit", "html", "application/json", HTML),
    ("/", "html", "text/turtle", HTML),
    (SELECT, "csv", XML_RESULTS, "text/csv"),
    (SELECT, "json", "text/csv", JSON_RESULTS),
    (CONSTRUCT, "ttl", RDFXML, TTL),
    (CONSTRUCT, "jsonld", None, JSONLD),
]


@pytest.mark.parametrize(("route", "key", "accept", "media_type"), FORMAT_ROWS)
def test_format_parameter_beats_accept(
    app: TestClient, route: str, key: str, accept: str | None, media_type: str
) -> None:
    joined = f"{route}{'&' if '?' in route else '?'}format={key}"
    response = app.get(joined, headers={"Accept": accept} if accept else {})
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"].split(";")[0] == media_type


NEGOTIATED = ["/doc/place/kassel", "/ontology", "/catalog", "/.well-known/void", "/sparql", "/audit", "/"]
NEGOTIATED += [SELECT]


@pytest.mark.parametrize("route", NEGOTIATED)
def test_an_unknown_format_is_400_with_the_formats_there_are(app: TestClient, route: str) -> None:
    joined = f"{route}{'&' if '?' in route else '?'}format=pdf"
    response = app.get(joined)
    assert response.status_code == 400, response.text
    assert "pdf" in response.text and ("html" in response.text or "json" in response.text)


def test_a_form_without_the_format_asked_for_is_406(app: TestClient) -> None:
    """`?format=csv` names a SELECT format: a CONSTRUCT has none by that name."""
    response = app.get(CONSTRUCT + "&format=csv")
    assert response.status_code == 406
    assert "CONSTRUCT" in response.text and "text/turtle (?format=ttl)" in response.text


# ------------------------------------------------------------------ the policy itself


OFFERS = (Offer(TTL, "ttl", also=("application/x-turtle",)), Offer(NT, "nt"), Offer(HTML, "html"))


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "ttl"),
        ("", "ttl"),
        ("*/*", "ttl"),
        ("nonsense", "ttl"),  # nothing readable: as if absent
        ("text/html", "html"),
        ("text/html;q=0.5, application/n-triples;q=0.6", "nt"),
        ("text/html;q=0.6, application/n-triples;q=0.5", "html"),
        ("application/n-triples, text/html", "nt"),  # equal q: the server's order, not the header's
        ("text/html, application/n-triples", "nt"),
        ("text/html, */*;q=1", "html"),  # equal q: named outright beats a wildcard
        ("text/*;q=0.9, text/html", "html"),
        ("text/*, text/turtle;q=0", "html"),  # the most specific range decides for Turtle
        ("application/x-turtle", "ttl"),  # another name of the same representation
        ("text/html;level=1;q=0.7, application/n-triples;q=0.5", "html"),  # parameters other than q ignored
        ("text/html;q=1.5, application/n-triples;q=0.1", "nt"),  # q outside [0, 1]: the range is ignored
        ("text/html;q=abc, application/n-triples;q=0.1", "nt"),
        ("TEXT/HTML", "html"),  # media types are case-insensitive
    ],
)
def test_choice(accept: str | None, chosen: str) -> None:
    assert choose(OFFERS, accept).key == chosen


@pytest.mark.parametrize("accept", ["image/png", "text/turtle;q=0, text/html;q=0, application/n-triples;q=0",
                                    "*/*;q=0", "text/*;q=0, application/*;q=0"])
def test_q_zero_and_types_nobody_offers_are_not_acceptable(accept: str) -> None:
    with pytest.raises(NotAcceptable) as refused:
        choose(OFFERS, accept)
    assert refused.value.status == 406
    assert "text/turtle (?format=ttl), application/n-triples (?format=nt), text/html (?format=html)" in (
        refused.value.message
    )


def test_q_zero_excludes_exactly_what_it_names() -> None:
    """`q=0` is "not acceptable", never "least preferred": the q=0 type is never chosen even
    when it is the only one the server has, and only it is excluded."""
    assert [o.key for o, _ in ranked(OFFERS, "text/turtle;q=0, */*;q=0.001")] == ["nt", "html"]
    assert ranked(OFFERS[:1], "text/turtle;q=0, */*") == []
    assert [o.key for o, _ in ranked(OFFERS, "text/turtle;q=0.001")] == ["ttl"]


def test_format_key_wins_and_an_unknown_one_is_400() -> None:
    assert choose(OFFERS, "text/html", "nt").key == "nt"
    with pytest.raises(UnknownFormat) as unknown:
        choose(OFFERS, None, "pdf")
    assert unknown.value.status == 400 and "ttl, nt, html" in unknown.value.message


def test_specificity_of_each_range() -> None:
    ranges = parse_accept("text/turtle;q=0.2, text/*;q=0.4, */*;q=0.6, image/png")
    assert [(r.type, r.subtype, r.q) for r in ranges] == [
        ("text", "turtle", 0.2), ("text", "*", 0.4), ("*", "*", 0.6), ("image", "png", 1.0),
    ]
    assert [r.specificity(TTL) for r in ranges] == [EXACT, SUBTYPE_WILDCARD, ANY, 0]
    assert parse_accept("*/html, /, text") == parse_accept(None)  # nothing readable
