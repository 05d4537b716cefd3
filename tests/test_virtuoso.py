"""A second real engine behind the same front end: OpenLink Virtuoso (Debian's package).

A private Virtuoso (tests/virtuoso_support.py) gets the world release through our own
`twinning-kg publish --to …/sparql-graph-crud-auth --user dba` (SPARQL 1.1 Graph Store
Protocol, HTTP Digest auth), then `twinning-kg serve --store …/sparql` must:
- speak the protocol as over the embedded engine (the W3C protocol suite, replayed);
- keep its limits: our row cap and time limit, and never pass on an answer the store
  says is incomplete (its own row cap and time limit);
- serve the linked-data pages, the catalog and the audit from the store;
- give the same answers as the embedded engine (a second front end over the same
  release) on the YASGUI example queries and on more, compared as sets of solutions;
- refuse what Virtuoso understands beyond SPARQL 1.1 (docs/virtuoso.md): its pragmas and
  SQL built-ins, one of which fetches URLs; the canary shows the attack is real.
"""

from __future__ import annotations

import asyncio
import csv
import http.server
import io
import json
import os
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest
from rdflib import Graph, Literal
from rdflib.compare import isomorphic

import test_sparql_protocol as w3c
from conftest import ServerProcess, free_port, run_cli, shared_path
from sparql_support import release_of
from test_import import MOST_TWINNED, ONE_WAY, WEIMAR_PARTNERS
from twinning_kg.config import Settings
from twinning_kg.query import remote_quirks
from twinning_kg.query.engine import QueryError, QueryRequest
from twinning_kg.query.remote_engine import RemoteEngine
from twinning_kg.web.site_queries import description_query
from virtuoso_support import Virtuoso

pytestmark = pytest.mark.virtuoso

BASE = Settings().base_iri
ID = f"{BASE}id/"
JSON = "application/sparql-results+json"
QUERIES = Path(__file__).resolve().parents[1] / "src" / "twinning_kg" / "web" / "queries"
XSD = "http://www.w3.org/2001/XMLSchema#"
WKT = "http://www.opengis.net/ont/geosparql#wktLiteral"
NUMERIC = {f"{XSD}{t}" for t in ("integer", "decimal", "double", "float", "int", "long")}
PREFIXES = f"""PREFIX tw: <{BASE}ontology#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
PREFIX geo: <http://www.w3.org/2003/01/geo/wgs84_pos#>
PREFIX gsp: <http://www.opengis.net/ont/geosparql#>
PREFIX dcterms: <http://purl.org/dc/terms/>
PREFIX prov: <http://www.w3.org/ns/prov#>
"""
KASSEL = f"<{ID}place/kassel>"
# Hopeless on any engine: a three-way cross product of the release with a filter on each.
SLOW = (
    "SELECT (COUNT(*) AS ?n) WHERE { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i "
    "FILTER(STRLEN(STR(?c)) < STRLEN(STR(?i))) }"
)

# Beyond the YASGUI examples: what the site and its users ask, one feature each.
MORE_QUERIES: dict[str, str] = {
    "weimar-partners": WEIMAR_PARTNERS,
    "most-twinned": MOST_TWINNED,
    "one-way": ONE_WAY,
    "triples-per-graph": "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g",
    "all-triples": "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
    "start-dates": PREFIXES + "SELECT ?p ?start ?precision WHERE { ?p tw:startDate ?start ; "
    "tw:startPrecision ?precision }",
    "coordinates": PREFIXES + "SELECT ?place ?lat ?long WHERE { ?place geo:lat ?lat ; geo:long ?long }",
    "geometries": PREFIXES + "SELECT ?g ?wkt WHERE { ?g gsp:asWKT ?wkt }",
    "blank-nodes": PREFIXES + f"SELECT ?s ?p ?o WHERE {{ GRAPH <{BASE}graph/ontology> "
    "{ ?s ?p ?o FILTER(isBlank(?s) || isBlank(?o)) } }",
    "labels-in-every-language": PREFIXES + f"SELECT ?label (LANG(?label) AS ?lang) (STRLEN(?label) AS ?len) "
    f"(UCASE(?label) AS ?upper) WHERE {{ ?p tw:partner {KASSEL}, ?partner . "
    f"FILTER(?partner != {KASSEL}) ?partner rdfs:label ?label }}",
    "without-end-date": PREFIXES + "SELECT ?p WHERE { ?p a tw:Partnership ; tw:curated true "
    "FILTER NOT EXISTS { ?p tw:endDate ?d } }",
    "optional-end": PREFIXES + "SELECT ?p ?end WHERE { ?p a tw:Partnership ; tw:curated true "
    "OPTIONAL { ?p tw:endDate ?end } }",
    "two-hops-from-kassel": PREFIXES + f"SELECT (COUNT(DISTINCT ?place) AS ?n) WHERE {{ "
    f"{KASSEL} tw:twinnedWith/tw:twinnedWith? ?place }}",
    "degree-buckets": PREFIXES + "SELECT ?bucket (COUNT(?p) AS ?partnerships) WHERE { "
    "{ SELECT ?place (COUNT(?q) AS ?degree) WHERE { ?q a tw:Partnership ; tw:partner ?place } "
    "GROUP BY ?place } ?p tw:partner ?place . "
    'BIND (IF(?degree >= 50, "50+", IF(?degree >= 10, "10-49", "1-9")) AS ?bucket) } GROUP BY ?bucket',
    "regex-and-casts": PREFIXES + "SELECT ?place ?label (xsd:integer(STRAFTER(STR(?place), "
    f'"{ID}place/Q")) AS ?qid) WHERE {{ ?place rdfs:label ?label '
    'FILTER(REGEX(?label, "^WEIM", "i") && STRSTARTS(STR(?place), "' + ID + 'place/Q")) }',
    "values-and-min-max": PREFIXES + "SELECT ?kind (MIN(?start) AS ?first) (MAX(?start) AS ?last) "
    "WHERE { VALUES ?kind { <" + ID + "kind/town-twinning> <" + ID + "kind/town-friendship> } "
    "?p tw:kind ?kind ; tw:startDate ?start ; tw:startPrecision <" + ID + "precision/day> } GROUP BY ?kind",
    "sources-of-suspensions": PREFIXES + "SELECT ?p ?source WHERE { ?p tw:statusSource ?source }",
    "from-one-graph": PREFIXES + f"SELECT (COUNT(*) AS ?n) FROM <{BASE}graph/kassel> WHERE {{ ?s ?p ?o }}",
    "from-and-from-named": PREFIXES + f"SELECT ?g (COUNT(*) AS ?n) FROM <{BASE}graph/kassel> "
    f"FROM NAMED <{BASE}graph/claims> WHERE {{ {{ ?s ?p ?o }} UNION {{ GRAPH ?g {{ ?s ?p ?o }} }} }} "
    "GROUP BY ?g",
    "relative-iris": "ASK { <id/place/kassel> ?p ?o }",
    "ask-false": PREFIXES + f"ASK {{ {KASSEL} tw:twinnedWith {KASSEL} }}",
}


@pytest.fixture(scope="module")
def virtuoso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Virtuoso]:
    """The store most tests use; its own time limit (30 s) leaves every real query room."""
    server = Virtuoso(tmp_path_factory.mktemp("virtuoso") / "db", max_seconds=30)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def strict(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Virtuoso]:
    """A second store with a 2 s time limit of its own, holding the Kassel release: where a
    hopeless query ends at the store's limit soon, without keeping the other store busy."""
    server = Virtuoso(tmp_path_factory.mktemp("virtuoso-strict") / "db", max_seconds=2)
    server.start()
    try:
        proc = publish(server, site)
        assert proc.returncode == 0, proc.stderr
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def strict_front(
    strict: Virtuoso, site: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = ServerProcess(["--graph", str(site), "--store", strict.sparql])
    server.start(tmp_path_factory.mktemp("strict-front"))
    yield server
    server.stop()


def publish(virtuoso: Virtuoso, release: Path, password: str | None = None) -> object:
    return run_cli(
        "publish",
        "--graph",
        str(release),
        "--to",
        virtuoso.gsp,
        "--user",
        "dba",
        env={
            **os.environ,
            "TWINNING_KG_STORE_PASSWORD": password or virtuoso.password,
            "COLUMNS": "200",
        },
    )


@pytest.fixture(scope="module")
def published(virtuoso: Virtuoso, world: Path) -> Virtuoso:
    proc = publish(virtuoso, world)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return virtuoso


@pytest.fixture(scope="module")
def front(
    published: Virtuoso, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Our front end over Virtuoso."""
    server = ServerProcess(["--graph", str(world), "--store", published.sparql])
    server.start(tmp_path_factory.mktemp("virtuoso-front"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def embedded(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The same release on the embedded engine: the reference answers."""
    server = ServerProcess(["--graph", str(world)])
    server.start(tmp_path_factory.mktemp("embedded-front"))
    yield server
    server.stop()


def ask(server: ServerProcess, query: str, accept: str = JSON, **params: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/sparql", data={"query": query, **params}, headers={"Accept": accept}, timeout=60
    )


# ------------------------------------------------------------------ normalising answers


def _float32(text: str) -> float:
    return struct.unpack("f", struct.pack("f", float(text)))[0]


def _wkt(text: str) -> tuple:
    """A WKT literal by its words and its coordinates at single precision (what Virtuoso keeps)."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split()
    return tuple(_float32(t) if t[0].isdigit() or t[0] in "+-." else t.upper() for t in tokens)


def term(binding: dict | None) -> tuple | None:
    """A SPARQL JSON term with what may legitimately differ normalised: xsd:string spelled
    or not, numbers by value, blank node labels (only that it is one), WKT at float32."""
    if binding is None:
        return None
    kind, value = binding["type"], binding["value"]
    if kind == "bnode":
        return ("bnode",)
    if kind == "uri":
        return ("uri", value)
    datatype = binding.get("datatype")
    if datatype == f"{XSD}string":
        datatype = None
    if datatype in NUMERIC:
        try:
            return ("number", Decimal(value).normalize())
        except InvalidOperation:
            pass
    if datatype == WKT:
        return ("wkt", _wkt(value))
    return ("literal", value, binding.get("xml:lang"), datatype)


def solutions(response: httpx.Response) -> tuple[list[str], list[tuple] | bool]:
    assert response.status_code == 200, response.text
    data = response.json()
    if "boolean" in data:
        return [], data["boolean"]
    names = data["head"]["vars"]
    return names, [tuple(term(row.get(v)) for v in names) for row in data["results"]["bindings"]]


def same_answers(reference: httpx.Response, other: httpx.Response, query: str) -> None:
    names, expected = solutions(reference)
    other_names, got = solutions(other)
    assert other_names == names, query
    if isinstance(expected, bool):
        assert got is expected, query
        return
    assert expected, f"the reference answer is empty: the comparison would prove nothing\n{query}"
    assert Counter(got) == Counter(expected), query
    if "ORDER BY" in query.upper():
        assert got == expected, f"same solutions, other order:\n{query}"


# ------------------------------------------------------------------ publication


def test_publish_puts_every_graph_and_only_those(published: Virtuoso, world: Path) -> None:
    manifest = json.loads((world / "manifest.json").read_text())
    counts = published.counts()
    assert {g: n for g, n in counts.items() if g in manifest["graphs"]} == manifest["graphs"]
    # Virtuoso keeps graphs of its own (virtrdf#, ...): the front end must never see them.
    assert set(counts) - set(manifest["graphs"])


def test_publishing_again_replaces_rather_than_adds(published: Virtuoso, world: Path) -> None:
    before = published.counts()
    proc = publish(published, world)
    assert proc.returncode == 0, proc.stderr
    assert "(200)" in proc.stderr  # replaced, where the first publication created (201)
    assert published.counts() == before


def test_wrong_password_is_a_message_and_changes_nothing(published: Virtuoso, world: Path) -> None:
    before = published.counts()
    proc = publish(published, world, password="not-" + published.password)
    assert proc.returncode == 1
    assert "401" in proc.stderr and "refused these credentials" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert published.counts() == before


def test_the_store_listens_on_loopback_only(published: Virtuoso) -> None:
    listening = Path("/proc/net/tcp").read_text().splitlines()[1:]
    ports = {published.http_port, published.isql_port}
    found = {}
    for line in listening:
        local, state = line.split()[1], line.split()[3]
        address, port = local.split(":")
        if state == "0A" and int(port, 16) in ports:  # 0A: LISTEN
            found[int(port, 16)] = address
    assert found == {p: "0100007F" for p in ports}  # 127.0.0.1


# ------------------------------------------------------------------ protocol


@pytest.fixture(scope="module")
def w3c_endpoint(published: Virtuoso, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The W3C protocol suite's data as a second release in the same Virtuoso, with its own
    front end: each front end sees its own release's graphs only."""
    shared_path("conformance", "sparql11-protocol", "manifest.ttl")
    files = {
        str(w3c.GRAPH.value(d, w3c.RDFS.label)): Path(
            str(w3c.GRAPH.value(d, w3c.UT.graph)).removeprefix("file://")
        )
        for d in w3c.GRAPH.objects(None, w3c.UT.graphData)
    }
    release = release_of(tmp_path_factory.mktemp("w3c-virtuoso") / "site", files=files)
    proc = publish(published, release)
    assert proc.returncode == 0, proc.stderr
    server = ServerProcess(["--graph", str(release), "--store", published.sparql])
    server.start(tmp_path_factory.mktemp("w3c-front"))
    yield server.url
    server.stop()


@pytest.mark.parametrize("test", list(w3c._params()))
def test_w3c_protocol_suite_over_virtuoso(test: object, w3c_endpoint: str) -> None:
    w3c.test_protocol(test, w3c_endpoint)


@pytest.mark.parametrize(
    "accept",
    [
        "application/sparql-results+json",
        "application/sparql-results+xml",
        "text/csv",
        "text/tab-separated-values",
    ],
)
def test_result_formats_match_the_embedded_engine_byte_for_byte(
    front: ServerProcess, embedded: ServerProcess, accept: str
) -> None:
    """Whatever Virtuoso writes, the client gets pyoxigraph's serialisation: the same bytes."""
    query = WEIMAR_PARTNERS
    ours, reference = ask(front, query, accept), ask(embedded, query, accept)
    assert ours.status_code == reference.status_code == 200, ours.text
    assert ours.headers["content-type"] == reference.headers["content-type"]
    assert ours.content == reference.content


@pytest.mark.parametrize("accept", ["text/turtle", "application/n-triples", "application/rdf+xml"])
def test_graph_results_match_the_embedded_engine(
    front: ServerProcess, embedded: ServerProcess, accept: str
) -> None:
    query = description_query(f"{ID}place/Q3955")
    ours, reference = ask(front, query, accept), ask(embedded, query, accept)
    assert ours.status_code == reference.status_code == 200, ours.text
    assert ours.headers["content-type"] == reference.headers["content-type"]
    fmt = {"text/turtle": "turtle", "application/n-triples": "nt", "application/rdf+xml": "xml"}[accept]
    assert isomorphic(
        Graph().parse(data=ours.content, format=fmt), Graph().parse(data=reference.content, format=fmt)
    )


def test_errors_are_messages_with_the_right_status(front: ServerProcess) -> None:
    response = ask(front, "SELECT * WHERE { ?s ?p }")  # our guard reads it first: never sent
    assert response.status_code == 400 and "SPARQL syntax error at 1:" in response.text, response.text
    # Valid SPARQL 1.1 (a prologue may hold several BASEs) that Virtuoso's parser refuses:
    response = ask(front, "BASE <urn:a:> BASE <urn:b:> SELECT * WHERE { ?s ?p ?o } LIMIT 1")
    assert response.status_code == 400 and "SP030" in response.text, response.text  # Virtuoso's message
    # Virtuoso answers 500 for an unknown function; it is the query's fault: 400, not 502.
    response = ask(front, "SELECT (<http://www.opengis.net/def/function/geosparql/distance>(1, 2) AS ?d) {}")
    assert response.status_code == 400, response.text


# ------------------------------------------------------------------ same answers


def example_queries() -> dict[str, str]:
    found = {p.stem: p.read_text() for p in sorted(QUERIES.glob("*.rq"))}
    assert len(found) >= 3
    return {name: text for name, text in found.items() if "SERVICE" not in text.upper()}


@pytest.mark.parametrize("name", sorted(example_queries()))
def test_example_queries_answer_as_on_the_embedded_engine(
    front: ServerProcess, embedded: ServerProcess, name: str
) -> None:
    query = example_queries()[name]
    same_answers(ask(embedded, query), ask(front, query), query)


@pytest.mark.parametrize("name", sorted(MORE_QUERIES))
def test_more_queries_answer_as_on_the_embedded_engine(
    front: ServerProcess, embedded: ServerProcess, name: str
) -> None:
    query = MORE_QUERIES[name]
    same_answers(ask(embedded, query), ask(front, query), query)


def test_protocol_dataset_answers_as_on_the_embedded_engine(
    front: ServerProcess, embedded: ServerProcess
) -> None:
    query = "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"
    params = {"named-graph-uri": f"{BASE}graph/kassel"}
    same_answers(ask(embedded, query, **params), ask(front, query, **params), query)


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", {"default-graph-uri": f"{BASE}graph/kassel"}),
        (
            "SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }",
            {"default-graph-uri": f"{BASE}graph/kassel"},
        ),
        ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", {"named-graph-uri": f"{BASE}graph/kassel"}),
    ],
)
def test_half_a_protocol_dataset_answers_as_on_the_embedded_engine(
    front: ServerProcess, embedded: ServerProcess, query: str, params: dict[str, str]
) -> None:
    """The half the client leaves out is empty (Virtuoso would make it every graph it holds)."""
    same_answers(ask(embedded, query, **params), ask(front, query, **params), f"{query} {params}")


VIRTRDF = "http://www.openlinksw.com/schemas/virtrdf#"


def test_virtuoso_merges_from_into_the_protocol_dataset(published: Virtuoso) -> None:
    """Positive control of the quirk: asked directly, FROM adds the store's system graph
    to the dataset the protocol names (599 triples of ours + its own)."""
    query = f"SELECT (COUNT(*) AS ?n) FROM <{VIRTRDF}> WHERE {{ ?s ?p ?o }}"
    response = published.query(query, **{"default-graph-uri": f"{BASE}graph/kassel"})
    assert int(response.json()["results"]["bindings"][0]["n"]["value"]) > 599
    ghost = published.query(
        f"ASK {{ GRAPH <{VIRTRDF}> {{ ?s ?p ?o }} }}", **{"named-graph-uri": f"{BASE}graph/kassel"}
    )
    assert ghost.json()["boolean"] is True  # though that graph is not among the named graphs


@pytest.mark.parametrize(
    ("query", "params"),
    [
        (f"SELECT (COUNT(*) AS ?n) FROM <{VIRTRDF}> WHERE {{ ?s ?p ?o }}", {}),
        (f"ASK {{ GRAPH <{VIRTRDF}> {{ ?s ?p ?o }} }}", {}),
        (f"PREFIX v: <{VIRTRDF}> SELECT * FROM NAMED v: WHERE {{ ?s ?p ?o }}", {}),
    ],
)
def test_graphs_outside_the_release_named_in_the_query_are_refused(
    front: ServerProcess, query: str, params: dict[str, str]
) -> None:
    """Virtuoso cannot be made to read them as empty graphs (it merges FROM in): refused."""
    response = ask(front, query, **params)
    assert response.status_code == 400, response.text
    assert "this dataset has no such graph" in response.text and VIRTRDF in response.text


def test_graph_with_from_and_no_from_named_sees_no_graph(
    front: ServerProcess, embedded: ServerProcess, published: Virtuoso
) -> None:
    """Such a query has no named graphs; Virtuoso, asked directly, lists all of its own."""
    query = f"SELECT DISTINCT ?g FROM <{BASE}graph/kassel> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"
    direct = published.query(query)
    assert VIRTRDF in {b["g"]["value"] for b in direct.json()["results"]["bindings"]}
    assert ask(front, query).json()["results"]["bindings"] == []
    counted = f"SELECT (COUNT(*) AS ?n) FROM <{BASE}graph/kassel> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}"
    same_answers(ask(embedded, counted), ask(front, counted), counted)


@pytest.mark.parametrize(
    ("query", "params"),
    [
        ("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } }", {"named-graph-uri": VIRTRDF}),
        ("SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }", {"default-graph-uri": VIRTRDF}),
    ],
)
def test_graphs_outside_the_release_in_the_protocol_are_empty(
    front: ServerProcess, embedded: ServerProcess, query: str, params: dict[str, str]
) -> None:
    """As on the embedded engine (and as the W3C protocol tests expect): an empty graph."""
    response = ask(front, query, **params)
    assert response.json()["results"]["bindings"][0]["n"]["value"] == "0"
    same_answers(ask(embedded, query, **params), response, f"{query} {params}")


def test_geometries_come_back_as_wkt_literals_without_invented_digits(front: ServerProcess) -> None:
    """Virtuoso stores WKT as float32 and prints it as virtrdf:Geometry with 12 digits."""
    response = ask(
        front,
        f"SELECT ?wkt WHERE {{ <{ID}geometry/kassel> <http://www.opengis.net/ont/geosparql#asWKT> ?wkt }}",
    )
    [binding] = response.json()["results"]["bindings"]
    assert binding["wkt"] == {"type": "literal", "datatype": WKT, "value": "POINT(9.4979 51.3158)"}


# ------------------------------------------------------------------ pages and catalog


def _document(server: ServerProcess, path: str) -> Graph:
    """The Turtle document `path` (a thing's IRI) dereferences to, WKT written as at float32."""
    found = httpx.get(f"{server.url}{path}", headers={"Accept": "text/turtle"}, timeout=60)
    assert found.status_code == 303, (path, found.status_code)
    location = urljoin(f"{server.url}/", found.headers["location"])
    document = httpx.get(location, headers={"Accept": "text/turtle"}, timeout=60)
    assert document.status_code == 200, document.text
    graph = Graph()
    for s, p, o in Graph().parse(data=document.text, format="turtle"):
        if isinstance(o, Literal) and str(o.datatype) == WKT:
            o = Literal(remote_quirks.wkt(str(o)), datatype=o.datatype)
        graph.add((s, p, o))
    return graph


@pytest.mark.parametrize(
    "path",
    [
        "/id/place/kassel",
        "/id/place/Q3955",
        "/id/partnership/kassel--florence",
        "/id/geometry/kassel",
        "/id/geometry/berlin-mitte",
        "/id/source/k-2012",
        "/id/status/suspended",  # not a concept in wide use: its incoming links are cut at 1,000
    ],
)
def test_linked_data_documents_come_from_virtuoso(
    front: ServerProcess, embedded: ServerProcess, path: str
) -> None:
    ours, reference = _document(front, path), _document(embedded, path)
    assert len(reference) > 2
    assert isomorphic(ours, reference), path


def test_pages_over_virtuoso(front: ServerProcess) -> None:
    page = httpx.get(f"{front.url}/doc/place/kassel", headers={"Accept": "text/html"}, timeout=60)
    assert page.status_code == 200 and "Mulhouse" in page.text
    wkt = httpx.get(
        f"{front.url}/doc/geometry/kassel", headers={"Accept": "application/n-triples"}, timeout=60
    )
    assert f'"POINT(9.4979 51.3158)"^^<{WKT}>' in wkt.text  # no float32 digits, the standard datatype
    missing = httpx.get(f"{front.url}/id/place/no-such-place", headers={"Accept": "text/turtle"}, timeout=60)
    assert missing.status_code == 404


def test_catalog_void_and_audit_over_virtuoso(front: ServerProcess, embedded: ServerProcess) -> None:
    for path in ("/catalog", "/.well-known/void"):
        documents = [
            httpx.get(f"{s.url}{path}", headers={"Accept": "text/turtle"}, timeout=60, follow_redirects=True)
            for s in (front, embedded)
        ]
        assert [d.status_code for d in documents] == [200, 200], path
        assert documents[0].content == documents[1].content, path
    audit = [httpx.get(f"{s.url}/audit", timeout=60) for s in (front, embedded)]
    assert [a.status_code for a in audit] == [200, 200], audit[0].text[:500]
    assert audit[0].text == audit[1].text


# ------------------------------------------------------------------ limits


def test_row_cap_through_the_front_end(front: ServerProcess) -> None:
    response = ask(front, "SELECT * WHERE { ?s ?p ?o }")  # 156,179 rows; the cap is 10,000
    assert response.status_code == 422 and "more than 10000 rows" in response.text
    response = ask(front, "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "application/n-triples")
    assert response.status_code == 422 and "more than 10000 triples" in response.text
    response = ask(front, "SELECT * WHERE { ?s ?p ?o } LIMIT 10000", "text/csv")
    assert response.status_code == 200
    assert len(list(csv.reader(io.StringIO(response.text)))) == 10001  # the header and 10,000 rows


def _errors(
    url: str,
    settings: Settings,
    queries: list[str],
    graphs: tuple[str, ...] = (f"{BASE}graph/wikidata-p190-2016",),
) -> list[QueryError]:
    async def run() -> list[QueryError]:
        engine = RemoteEngine(url, settings, graphs=graphs)
        found = []
        try:
            for query in queries:
                try:
                    await engine.execute(QueryRequest(query, accept="application/n-triples"))
                except QueryError as exc:
                    found.append(exc)
        finally:
            await engine.close()
        return found

    return asyncio.run(run())


def test_a_result_the_store_cut_at_its_own_cap_is_refused(published: Virtuoso) -> None:
    """ResultSetMaxRows is 20,000 in this store: with our cap above it, Virtuoso hands over
    20,000 rows as if they were all. For SELECT its X-SPARQL-MaxRows header says otherwise;
    for CONSTRUCT nothing does, and the engine's probe of the store's cap must catch it."""
    errors = _errors(
        published.sparql,
        Settings(max_rows=50_000),
        ["SELECT * WHERE { ?s ?p ?o }", "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"],
    )
    assert [e.status for e in errors] == [422, 422]
    assert "at least 20000 rows" in errors[0].message and "at least 20000 triples" in errors[1].message
    assert all("the SPARQL store behind this endpoint" in e.message for e in errors)


def test_our_time_limit_and_the_stores(strict: Virtuoso, site: Path) -> None:
    """0.5 s is ours; with ours at 60 s, Virtuoso's own MaxQueryExecutionTime (2 s) ends the query."""
    graphs = tuple(json.loads((site / "manifest.json").read_text())["graphs"])
    ours = _errors(strict.sparql, Settings(query_timeout=0.5), [SLOW], graphs)
    theirs = _errors(strict.sparql, Settings(query_timeout=60), [SLOW], graphs)
    assert [e.status for e in ours + theirs] == [422, 422]
    assert "time limit of 0.5 s" in ours[0].message
    assert "its own time limit" in theirs[0].message and "SR171" in theirs[0].message


def test_ask_stays_quick_while_the_store_is_busy(strict_front: ServerProcess) -> None:
    results: list[int] = []
    slow = threading.Thread(target=lambda: results.append(ask(strict_front, SLOW).status_code))
    slow.start()
    try:
        time.sleep(0.3)  # the slow query is running in the store
        response = ask(strict_front, "ASK {}")
        assert response.status_code == 200 and response.elapsed.total_seconds() < 1
    finally:
        slow.join(60)
    assert results == [422]  # the server's default limit is 30 s; the store's 2 s ends it first


def test_a_dead_store_is_502(world: Path) -> None:
    errors = _errors(f"http://127.0.0.1:{free_port()}/sparql", Settings(), ["ASK {}"])
    assert [e.status for e in errors] == [502]


# ------------------------------------------------------------------ what Virtuoso must not be asked


class Canary:
    """A local HTTP server that counts the requests it gets: did someone make the store fetch?"""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"canary")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/canary"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    bird = Canary()
    yield bird
    bird.close()


def fetching_queries(url: str) -> list[str]:
    """Ways to write Virtuoso's bif:http_get(url), as an attacker would try them."""
    return [
        f"SELECT (<bif:http_get>('{url}') AS ?x) {{}}",
        f"SELECT (bif:http_get('{url}') AS ?x) {{}}",
        f"SELECT (BIF:http_get('{url}') AS ?x) {{}}",
        f"PREFIX b: <bif:> SELECT (b:http_get('{url}') AS ?x) {{}}",
        f"SELECT (<\\u0062if:http_get>('{url}') AS ?x) {{}}",
        f"BASE <bif:> SELECT (<http_get>('{url}') AS ?x) {{}}",
        f"SELECT ?x WHERE {{ BIND(<bif:http_get>('{url}') AS ?x) }}",
        f"SELECT * WHERE {{ ?s ?p ?o FILTER(<bif:http_get> # comment\n ('{url}') != '') }} LIMIT 1",
        f"ASK {{ FILTER(STRLEN(<bif:http_get>('{url}')) > 0) }}",
    ]


def test_the_attack_is_real_on_virtuoso_itself(published: Virtuoso, canary: Canary) -> None:
    """Positive control: asked directly, the store's anonymous endpoint fetches the URL."""
    response = published.query(fetching_queries(canary.url)[0])
    assert response.status_code == 200, response.text
    assert canary.hits == ["/canary"]


def test_the_front_end_never_lets_virtuoso_fetch(front: ServerProcess, canary: Canary) -> None:
    for query in fetching_queries(canary.url):
        response = ask(front, query)
        assert response.status_code == 400, (query, response.status_code, response.text)
        assert any(reason in response.text for reason in OUR_REFUSALS), response.text
    assert canary.hits == []


# Our guard reads SPARQL 1.1 first (query_syntax: a DEFINE or an undeclared bif: prefix is a
# syntax error there), then remote_guard refuses what is valid SPARQL but not ours to forward.
OUR_REFUSALS = (
    "SPARQL syntax error",
    "standard SPARQL 1.1 only",
    "DEFINE is not SPARQL 1.1",
    "is not supported by this endpoint",
)


@pytest.mark.parametrize(
    "query",
    [
        # DEFINE swaps the dataset for Virtuoso's system graphs, or sponges FROM URLs
        "define input:default-graph-uri <http://www.openlinksw.com/schemas/virtrdf#> "
        "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",
        'DEFINE get:soft "replace" SELECT * FROM <http://127.0.0.1:9/x> WHERE { ?s ?p ?o }',
        "#comment\n  Define sql:log-enable 2 SELECT * WHERE { ?s ?p ?o } LIMIT 1",
        "define input:default-graph-uri <http://www.openlinksw.com/schemas/virtrdf#> BASE <urn:x:> "
        "SELECT (COUNT(*) AS ?n) WHERE { ?s ?p ?o }",  # its own BASE: nothing of ours goes first
        "SELECT (bif:sys_stat('st_dbms_name') AS ?x) {}",  # server internals
        "SELECT (<sql:RDF_QUAD_URI_L>('a', 'b', 'c') AS ?x) {}",  # stored procedures
        "SELECT * WHERE { ?s <bif:contains> '\"Kassel\"' }",
        "PREFIX fn: <http://www.w3.org/2005/xpath-functions#> "
        "SELECT (fn:doc('http://127.0.0.1:9/') AS ?x) {}",
    ],
)
def test_virtuoso_extensions_are_refused(front: ServerProcess, query: str) -> None:
    response = ask(front, query)
    assert response.status_code == 400, response.text
    # refused by us, before the store is asked (not an error of Virtuoso's compiler)
    assert any(reason in response.text for reason in OUR_REFUSALS), response.text


def test_standard_queries_naming_those_words_still_run(front: ServerProcess) -> None:
    """The refusals read syntax, not words: a variable or prefix named `define` is fine."""
    query = (
        "PREFIX define: <urn:x#> PREFIX xsd: <http://www.w3.org/2001/XMLSchema#> "
        "SELECT ?define (xsd:integer('7') AS ?n) WHERE { BIND(define:y AS ?define) "
        "FILTER(!CONTAINS('# not <urn:f>(1) a call', 'x')) }"
    )
    response = ask(front, query)
    assert response.status_code == 200, response.text
    assert response.json()["results"]["bindings"][0]["n"]["value"] == "7"
