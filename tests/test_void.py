"""VoID at /.well-known/void (issue 3): every number in it equals what SPARQL COUNT answers.

Runs against the real server started with `--base-url` its own address, so the VoID's
IRIs of ours are followable here, and /sparql answers in that same IRI space: the tests
compare the two without mapping anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic

from conftest import ServerProcess

VOID = Namespace("http://rdfs.org/ns/void#")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS = Namespace("http://www.w3.org/2000/01/rdf-schema#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
OWL_SAME_AS = URIRef("http://www.w3.org/2002/07/owl#sameAs")
CC0 = URIRef("http://creativecommons.org/publicdomain/zero/1.0/")
JSON_RESULTS = {"Accept": "application/sparql-results+json"}
TURTLE = {"Accept": "text/turtle"}
Canon = Callable[[URIRef], URIRef]


@pytest.fixture(scope="module")
def http(local_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def base_iri(site: Path) -> str:
    return json.loads((site / "manifest.json").read_text())["base_iri"]


@pytest.fixture(scope="module")
def void(http: httpx.Client) -> Graph:
    response = http.get("/.well-known/void", headers={"Accept": "text/turtle"})
    assert response.status_code == 200, response.text
    return Graph().parse(data=response.content, format="turtle")


@pytest.fixture(scope="module")
def root(void: Graph, local_server: ServerProcess) -> URIRef:
    node = URIRef(local_server.url + "/void")
    assert (node, RDF.type, VOID.Dataset) in void
    return node


@pytest.fixture(scope="module")
def canonical() -> Canon:
    """One IRI space: what the VoID names is what /sparql answers with, unmapped."""
    return lambda term: term


def select(http: httpx.Client, query: str) -> list[dict]:
    response = http.get("/sparql", params={"query": query}, headers=JSON_RESULTS)
    assert response.status_code == 200, response.text
    return response.json()["results"]["bindings"]


def count(http: httpx.Client, query: str) -> int:
    rows = select(http, query)
    return int(rows[0]["n"]["value"])


def grouped(http: httpx.Client, query: str) -> dict[URIRef, int]:
    return {URIRef(row["k"]["value"]): int(row["n"]["value"]) for row in select(http, query)}


def number(void: Graph, node: URIRef, prop: URIRef) -> int:
    value = void.value(node, prop)
    assert isinstance(value, Literal), f"{node} has no {prop}"
    return int(value)


# Each distinct triple of the union once, whatever the store's union-graph semantics.
DISTINCT = "{ SELECT DISTINCT ?s ?p ?o { ?s ?p ?o } }"


def test_totals_match_sparql(
    http: httpx.Client, void: Graph, root: URIRef, local_server: ServerProcess, base_iri: str
) -> None:
    space = f"{local_server.url}/id/"  # one IRI space: the VoID names what a client dereferences
    expected = {
        VOID.triples: f"SELECT (COUNT(*) AS ?n) {DISTINCT}",
        VOID.distinctSubjects: "SELECT (COUNT(DISTINCT ?s) AS ?n) { ?s ?p ?o }",
        VOID.distinctObjects: "SELECT (COUNT(DISTINCT ?o) AS ?n) { ?s ?p ?o }",
        VOID.properties: "SELECT (COUNT(DISTINCT ?p) AS ?n) { ?s ?p ?o }",
        VOID.classes: "SELECT (COUNT(DISTINCT ?c) AS ?n) { ?s a ?c FILTER(isIRI(?c)) }",
    }
    for prop, query in expected.items():
        assert number(void, root, prop) == count(http, query), prop
    assert void.value(root, VOID.uriSpace) == Literal(space)
    # IRIs are mapped, strings are not: STR() inside the engine sees the canonical IRI
    in_space = f'FILTER(STRSTARTS(STR(?s), "{base_iri}id/"))'
    entities = count(http, f"SELECT (COUNT(DISTINCT ?s) AS ?n) {{ ?s ?p ?o {in_space} }}")
    assert number(void, root, VOID.entities) == entities > 0


def test_class_partitions_match_sparql(
    http: httpx.Client, void: Graph, root: URIRef, canonical: Canon
) -> None:
    partitions = {canonical(void.value(p, VOID["class"])): number(void, p, VOID.entities)
                  for p in void.objects(root, VOID.classPartition)}
    expected = grouped(http, "SELECT ?k (COUNT(DISTINCT ?s) AS ?n) { ?s a ?k FILTER(isIRI(?k)) } GROUP BY ?k")
    assert partitions == expected
    assert any(str(c).endswith("ontology#Partnership") for c in partitions)


def test_property_partitions_match_sparql(
    http: httpx.Client, void: Graph, root: URIRef, canonical: Canon
) -> None:
    partitions = {canonical(void.value(p, VOID.property)): number(void, p, VOID.triples)
                  for p in void.objects(root, VOID.propertyPartition)}
    expected = grouped(http, "SELECT ?k (COUNT(*) AS ?n) { SELECT DISTINCT ?s ?k ?o { ?s ?k ?o } } "
                             "GROUP BY ?k")
    assert partitions == expected
    assert sum(partitions.values()) == number(void, root, VOID.triples)


def test_named_graph_subsets_match_sparql(
    http: httpx.Client, void: Graph, root: URIRef, canonical: Canon
) -> None:
    subsets = {canonical(void.value(s, SD.name)): number(void, s, VOID.triples)
               for s in void.objects(root, VOID.subset) if void.value(s, SD.name) is not None}
    expected = grouped(http, "SELECT ?k (COUNT(*) AS ?n) { GRAPH ?k { ?s ?p ?o } } GROUP BY ?k")
    assert subsets == expected
    assert any(str(g).endswith("graph/kassel") for g in subsets)


def test_linksets_match_sparql(http: httpx.Client, void: Graph, root: URIRef) -> None:
    linksets = {ls for ls in void.objects(root, VOID.subset) if (ls, RDF.type, VOID.Linkset) in void}
    by_space = {}
    for linkset in linksets:
        assert void.value(linkset, VOID.subjectsTarget) == root
        predicate = void.value(linkset, VOID.linkPredicate)
        target = void.value(linkset, VOID.objectsTarget)
        assert (target, RDF.type, VOID.Dataset) in void
        space = str(void.value(target, VOID.uriSpace))
        links = count(http, f'SELECT (COUNT(*) AS ?n) {{ SELECT DISTINCT ?s ?o {{ ?s <{predicate}> ?o '
                            f'FILTER(STRSTARTS(STR(?o), "{space}")) }} }}')
        assert number(void, linkset, VOID.triples) == links > 0
        by_space[space] = linkset
    wikidata = by_space["http://www.wikidata.org/entity/"]
    assert void.value(wikidata, VOID.linkPredicate) == OWL_SAME_AS
    assert void.value(wikidata, DCTERMS.license) == CC0  # derived from Wikidata: CC0 like its source
    assert number(void, wikidata, VOID.triples) >= 10  # Kassel and its partners at least
    assert "https://sws.geonames.org/" in by_space


def test_every_namespace_used_is_a_vocabulary(
    http: httpx.Client, void: Graph, root: URIRef, canonical: Canon
) -> None:
    vocabularies = {str(canonical(v)) for v in void.objects(root, VOID.vocabulary)}
    used = {row["k"]["value"] for row in select(
        http, "SELECT DISTINCT ?k { { ?s ?k ?o } UNION { ?s a ?k FILTER(isIRI(?k)) } }")}
    for iri in used:
        namespace = iri[: iri.rfind("#") + 1] if "#" in iri else iri[: iri.rfind("/") + 1]
        assert namespace in vocabularies, iri


def test_links_resolve(http: httpx.Client, void: Graph, root: URIRef, local_server: ServerProcess,
                       canonical: Canon) -> None:
    """Dumps, endpoint and example resources named in the VoID can all be followed."""
    dumps = sorted(void.objects(root, VOID.dataDump))
    assert len(dumps) == 10
    for dump in dumps:
        assert str(dump).startswith(local_server.url + "/dumps/")
        assert http.head(str(dump)).status_code == 200, dump
    endpoint = void.value(root, VOID.sparqlEndpoint)
    assert endpoint == URIRef(local_server.url + "/sparql")
    assert http.get(str(endpoint), params={"query": "ASK {}"},
                    headers={"Accept": "application/sparql-results+json"}).json()["boolean"] is True
    examples = sorted(void.objects(root, VOID.exampleResource))
    paths = {str(e).rsplit("/id/", 1)[-1] for e in examples}
    assert paths == {"place/kassel", "partnership/kassel--florence"}
    for example in examples:
        assert count(http, f"SELECT (COUNT(*) AS ?n) {{ <{canonical(example)}> ?p ?o }}") > 0
        response = http.get(str(example), headers={"Accept": "text/turtle"}, follow_redirects=True)
        assert response.status_code == 200, example
    assert http.get("/void", follow_redirects=False).headers["location"] == "/.well-known/void"


def test_void_in_every_rdf_format(http: httpx.Client, void: Graph) -> None:
    for media, parser in (("application/rdf+xml", "xml"), ("application/ld+json", "json-ld"),
                          ("application/n-triples", "nt")):
        response = http.get("/.well-known/void", headers={"Accept": media})
        assert response.headers["content-type"].split(";")[0] == media
        assert isomorphic(Graph().parse(data=response.content, format=parser), void), media


def test_service_description_and_catalog_link_to_void(http: httpx.Client, local_server: ServerProcess,
                                                      root: URIRef) -> None:
    """The SPARQL service description and the DCAT catalog both lead a client to the VoID."""
    void_url = URIRef(local_server.url + "/.well-known/void")
    sd = http.get("/sparql", headers={"Accept": "text/turtle"})
    assert sd.status_code == 200, sd.text
    description = Graph().parse(data=sd.content, format="turtle")
    assert void_url in set(description.objects(None, RDFS.seeAlso)), sd.text
    catalog = Graph().parse(data=http.get("/catalog", headers=TURTLE).content, format="turtle")
    assert void_url in {catalog.value(d, RDFS.seeAlso) for d in catalog.subjects(RDF.type, DCAT.Dataset)}
    followed = Graph().parse(data=http.get(str(void_url), headers=TURTLE).content, format="turtle")
    assert (root, RDF.type, VOID.Dataset) in followed
