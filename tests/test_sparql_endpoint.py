"""The SPARQL endpoint over HTTP: content negotiation, service description, YASGUI, examples, 4xx.

Runs against the shared `server` fixture (the Kassel graph built by the real CLI).
Every representation is read back with a real parser (rdflib's SPARQL result and RDF
parsers, json, csv).
"""

from __future__ import annotations

import csv
import io
import json
import re

import httpx
import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF
from rdflib.query import Result

from twinning_kg.config import DEFAULT_BASE_IRI
from twinning_kg.web.views.sparql import QUERIES_DIR, load_examples

SD = "http://www.w3.org/ns/sparql-service-description#"
KASSEL = f"{DEFAULT_BASE_IRI}id/place/kassel"
SELECT = (
    "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
    f"SELECT ?label WHERE {{ <{KASSEL}> rdfs:label ?label }} ORDER BY ?label"
)
CONSTRUCT = f"CONSTRUCT {{ <{KASSEL}> ?p ?o }} WHERE {{ <{KASSEL}> ?p ?o }}"
RESULT_PARSERS = {
    "application/sparql-results+json": "json",
    "application/sparql-results+xml": "xml",
    "text/csv": "csv",
    "text/tab-separated-values": "tsv",
}
GRAPH_PARSERS = {
    "text/turtle": "turtle",
    "application/n-triples": "nt",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
}


def sparql(base_url: str, query: str, accept: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {"Accept": accept} if accept else {}
    if method == "GET":
        return httpx.get(f"{base_url}/sparql", params={"query": query}, headers=headers, timeout=30)
    return httpx.post(f"{base_url}/sparql", data={"query": query}, headers=headers, timeout=30)


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


# ------------------------------------------------------------------ content negotiation


@pytest.mark.parametrize("accept", list(RESULT_PARSERS))
def test_select_in_every_results_format(base_url: str, accept: str) -> None:
    response = sparql(base_url, SELECT, accept)
    assert response.status_code == 200, response.text
    assert media_type(response) == accept
    assert "accept" in response.headers["vary"].lower()
    result = Result.parse(io.BytesIO(response.content), format=RESULT_PARSERS[accept])
    labels = {str(row[0]) for row in result}
    assert "Kassel" in labels
    if accept in (
        "application/sparql-results+json",
        "application/sparql-results+xml",
        "text/tab-separated-values",
    ):
        assert Literal("Kassel", lang="de") in {row[0] for row in result}  # language tags survive


def test_select_csv_is_plain_csv(base_url: str) -> None:
    response = sparql(base_url, SELECT, "text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["label"]
    assert ["Kassel"] in rows[1:]


@pytest.mark.parametrize("accept", ["application/sparql-results+json", "application/sparql-results+xml"])
def test_ask_formats(base_url: str, accept: str) -> None:
    yes = sparql(base_url, f"ASK {{ <{KASSEL}> ?p ?o }}", accept)
    no = sparql(base_url, "ASK { <urn:nothing> ?p ?o }", accept)
    assert media_type(yes) == accept
    assert Result.parse(io.BytesIO(yes.content), format=RESULT_PARSERS[accept]).askAnswer is True
    assert Result.parse(io.BytesIO(no.content), format=RESULT_PARSERS[accept]).askAnswer is False


@pytest.mark.parametrize("accept", list(GRAPH_PARSERS))
@pytest.mark.parametrize("form", ["CONSTRUCT", "DESCRIBE"])
def test_graphs_in_every_rdf_format(base_url: str, accept: str, form: str) -> None:
    query = CONSTRUCT if form == "CONSTRUCT" else f"DESCRIBE <{KASSEL}>"
    response = sparql(base_url, query, accept, method="POST")
    assert response.status_code == 200, response.text
    assert media_type(response) == accept
    graph = Graph().parse(data=response.content, format=GRAPH_PARSERS[accept])
    assert (
        URIRef(KASSEL),
        URIRef("http://www.w3.org/2000/01/rdf-schema#label"),
        Literal("Kassel", lang="de"),
    ) in graph
    reference = Graph().parse(data=sparql(base_url, query, "application/n-triples").content, format="nt")
    assert len(graph) == len(reference)


@pytest.mark.parametrize("accept", [None, "*/*"])
def test_defaults_are_the_ones_the_protocol_names(base_url: str, accept: str | None) -> None:
    assert media_type(sparql(base_url, SELECT, accept)) == "application/sparql-results+xml"
    assert media_type(sparql(base_url, "ASK {}", accept)) == "application/sparql-results+xml"
    response = sparql(base_url, CONSTRUCT, accept)
    assert media_type(response) == "application/rdf+xml"
    assert len(Graph().parse(data=response.content, format="xml")) > 0


def test_q_values_and_wildcards(base_url: str) -> None:
    accept = "application/sparql-results+xml;q=0.5, application/sparql-results+json"
    assert media_type(sparql(base_url, SELECT, accept)) == "application/sparql-results+json"
    assert media_type(sparql(base_url, CONSTRUCT, "text/*")) == "text/turtle"
    # a browser's Accept gets XML, which it can show
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert media_type(sparql(base_url, SELECT, browser)) == "application/xml"


def test_union_default_graph_and_named_graphs(base_url: str) -> None:
    graphs = sparql(
        base_url, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } }", "application/sparql-results+json"
    )
    names = {b["g"]["value"] for b in graphs.json()["results"]["bindings"]}
    assert f"{DEFAULT_BASE_IRI}graph/kassel" in names
    assert f"{DEFAULT_BASE_IRI}graph/ontology" in names
    kassel_only = httpx.get(
        f"{base_url}/sparql",
        params={
            "query": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
            "default-graph-uri": f"{DEFAULT_BASE_IRI}graph/ontology",
        },
        headers={"Accept": "application/sparql-results+json"},
        timeout=30,
    )
    everything = sparql(
        base_url, "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", "application/sparql-results+json"
    )
    small = int(kassel_only.json()["results"]["bindings"][0]["n"]["value"])
    total = int(everything.json()["results"]["bindings"][0]["n"]["value"])
    assert 0 < small < total


def test_relative_iris_resolve_against_the_base_iri(base_url: str) -> None:
    response = sparql(base_url, "ASK { <id/place/kassel> ?p ?o }", "application/sparql-results+json")
    assert response.json()["boolean"] is True


# ------------------------------------------------------------------ service description and YASGUI


@pytest.mark.parametrize("accept", list(GRAPH_PARSERS))
def test_service_description(base_url: str, accept: str) -> None:
    response = httpx.get(f"{base_url}/sparql", headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200
    assert media_type(response) == accept
    graph = Graph().parse(data=response.content, format=GRAPH_PARSERS[accept])
    service = graph.value(predicate=RDF.type, object=URIRef(SD + "Service"))
    assert service is not None
    assert graph.value(service, URIRef(SD + "endpoint")) == URIRef(f"{base_url}/sparql")
    assert (service, URIRef(SD + "supportedLanguage"), URIRef(SD + "SPARQL11Query")) in graph
    assert (service, URIRef(SD + "supportedLanguage"), URIRef(SD + "SPARQL11Update")) not in graph
    assert (service, URIRef(SD + "feature"), URIRef(SD + "UnionDefaultGraph")) in graph
    names = set(graph.objects(None, URIRef(SD + "name")))
    assert URIRef(f"{DEFAULT_BASE_IRI}graph/kassel") in names
    assert URIRef(f"{DEFAULT_BASE_IRI}.well-known/void") in set(graph.objects(service, None))


def test_service_description_default_is_turtle(base_url: str) -> None:
    response = httpx.get(f"{base_url}/sparql", timeout=30)
    assert media_type(response) == "text/turtle"
    Graph().parse(data=response.content, format="turtle")


def test_yasgui_page_uses_only_local_assets(base_url: str) -> None:
    response = httpx.get(
        f"{base_url}/sparql", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}, timeout=30
    )
    assert response.status_code == 200
    assert media_type(response) == "text/html"
    html = response.text
    # what the page loads (a <link rel="alternate"> names the page in another language: no load)
    loading = [tag for tag in re.findall(r"<(?:script|link)[^>]*>", html) if 'rel="alternate"' not in tag]
    assets = [m.group(1) for tag in loading if (m := re.search(r'(?:src|href)="([^"]+)"', tag))]
    assert any(a.endswith("yasgui.min.js") for a in assets)
    assert any(a.endswith("yasgui.min.css") for a in assets)
    texts = {}
    for asset in assets:
        assert not re.match(r"(https?:)?//", asset), f"external asset {asset}"
        if not asset.startswith("data:"):
            fetched = httpx.get(base_url + asset, timeout=30)
            assert fetched.status_code == 200, asset
            for cdn in ("unpkg.com", "cdn.jsdelivr", "cdnjs", "googleapis"):
                assert cdn not in fetched.text
            texts[asset] = fetched.text
    # no inline script or style (the Content-Security-Policy allows only our files) ...
    assert not re.search(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html), "inline script"
    assert "<style" not in html and " style=" not in html
    # ... and the page's own script switches the bundle's internet lookups (prefix.cc, LOV) off
    page_script = next(text for asset, text in texts.items() if asset.endswith("/site/sparql.js"))
    assert 'autocompleters = ["variables"]' in page_script
    assert "dbpedia" not in html


def test_yasgui_page_carries_the_example_queries(base_url: str) -> None:
    html = httpx.get(f"{base_url}/sparql", headers={"Accept": "text/html"}, timeout=30).text
    embedded = re.search(r'<script type="application/json" id="examples">(.*?)</script>', html, re.DOTALL)
    assert embedded, "no example queries in the page"
    examples = {e["name"]: e["query"] for e in json.loads(embedded.group(1))}
    assert list(examples.items()) == list(load_examples(DEFAULT_BASE_IRI).items())  # in file order
    assert len(examples) >= 4
    assert any("SERVICE <https://query.wikidata.org/sparql>" in q for q in examples.values())


# ------------------------------------------------------------------ example queries


def test_example_queries_are_data_files() -> None:
    assert sorted(p.suffix for p in QUERIES_DIR.iterdir()) == [".rq"] * len(list(QUERIES_DIR.iterdir()))


# The federated example runs in test_egress.py, against a stand-in for Wikidata: no test
# reaches the internet.
LOCAL_EXAMPLES = [t for t, q in load_examples(DEFAULT_BASE_IRI).items() if "SERVICE" not in q]


@pytest.mark.parametrize("title", LOCAL_EXAMPLES)
def test_example_query_runs(base_url: str, title: str) -> None:
    query = load_examples(DEFAULT_BASE_IRI)[title]
    response = sparql(base_url, query, "application/sparql-results+json", method="POST")
    assert response.status_code == 200, response.text
    rows = response.json()["results"]["bindings"]
    assert rows, f"example {title!r} returned no rows"


def test_kassel_partners_example_answers_the_question(base_url: str) -> None:
    examples = load_examples(DEFAULT_BASE_IRI)
    query = next(q for t, q in examples.items() if t.startswith("Kassel's partners"))
    rows = sparql(base_url, query, "application/sparql-results+json", "POST").json()["results"]["bindings"]
    by_label = {r["partnerDe"]["value"]: r for r in rows}
    assert by_label["Florenz"]["startYear"]["value"] == "1952"
    assert all(r["partnerDe"].get("xml:lang") == "de" for r in rows)


# ------------------------------------------------------------------ 4xx, never 5xx


def test_malformed_query_is_400_with_the_parsers_message(base_url: str) -> None:
    response = sparql(base_url, "SELECT * WHERE { ?s ?p ")
    assert response.status_code == 400
    assert "syntax" in response.text.lower() and "1:" in response.text


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"params": [("query", "ASK {}"), ("query", "ASK {}")]}, 400),
        ({"method": "POST", "content": b"ASK {}"}, 415),
        ({"method": "POST", "content": b"ASK {}", "headers": {"Content-Type": "text/plain"}}, 415),
        (
            {
                "method": "POST",
                "content": "ASK {}".encode("utf-16"),
                "headers": {"Content-Type": "application/sparql-query; charset=UTF-16"},
            },
            415,
        ),
        (
            {
                "method": "POST",
                "content": b"ASK { <urn:\xff> ?p ?o }",
                "headers": {"Content-Type": "application/sparql-query"},
            },
            400,
        ),
        (
            {
                "method": "POST",
                "content": b"query=ASK%20%7B%20%3Curn%3A%FF%3E%20%3Fp%20%3Fo%20%7D",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            400,
        ),
        ({"method": "POST", "data": {"default-graph-uri": "urn:x"}}, 400),
        ({"method": "POST", "data": {"query": "ASK {}", "update": "CLEAR ALL"}}, 400),
        ({"method": "PUT", "params": {"query": "ASK {}"}}, 405),
        ({"method": "DELETE"}, 405),
        ({"params": {"query": "ASK {}", "default-graph-uri": "not an iri"}}, 400),
        ({"params": {"update": "CLEAR ALL"}}, 403),
    ],
)
def test_bad_requests_are_4xx(base_url: str, kwargs: dict, status: int) -> None:
    method = kwargs.pop("method", "GET")
    response = httpx.request(method, f"{base_url}/sparql", timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/plain") or status == 405


def test_non_utf8_query_string_is_400(base_url: str) -> None:
    response = httpx.get(f"{base_url}/sparql?query=ASK%20%7B%FF%7D", timeout=30)
    assert response.status_code == 400
    assert "UTF-8" in response.text


def test_head_and_options_never_5xx(base_url: str) -> None:
    for method in ("HEAD", "OPTIONS", "PATCH"):
        assert httpx.request(method, f"{base_url}/sparql", timeout=30).status_code < 500


def test_a_forged_host_header_cannot_break_the_service_description(base_url: str) -> None:
    response = httpx.get(
        f"{base_url}/sparql", headers={"Host": 'evil"><x', "Accept": "text/turtle"}, timeout=30
    )
    assert response.status_code < 500
    if response.status_code == 200:
        graph = Graph().parse(data=response.content, format="turtle")
        (endpoint,) = set(graph.objects(None, URIRef(SD + "endpoint")))
        assert not re.search(r'[<>"{}|^`\\\s]', str(endpoint)), endpoint
