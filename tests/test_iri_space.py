"""One IRI space under `--base-url` (docs/web.md): whatever a client dereferences it can
query with, and whatever the VoID or the service description names exists at /sparql.

In-process, over an app started with `--base-url` the test client's own address
(`local_app`): every IRI of ours in Kassel's document, the VoID and the catalog is
followed, and each one the graph holds is queried back at /sparql in that same space.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from rdflib import Graph, URIRef
from starlette.testclient import TestClient

from twinning_kg.config import DEFAULT_BASE_IRI
from web_support import LOCAL

TURTLE = {"Accept": "text/turtle"}
JSON = {"Accept": "application/sparql-results+json"}
SD_NAME = URIRef("http://www.w3.org/ns/sparql-service-description#name")
START = ("/doc/place/kassel", "/.well-known/void", "/catalog")


def fetch(client: TestClient, path: str) -> Graph:
    response = client.get(path, headers=TURTLE, follow_redirects=True)
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return Graph().parse(data=response.text, format="turtle", publicID=LOCAL + path.lstrip("/"))


def ours(graph: Graph) -> set[str]:
    """Every IRI of ours in `graph`: under the client's base, as the server must write them."""
    return {str(t) for triple in graph for t in triple if isinstance(t, URIRef) and str(t).startswith(LOCAL)}


def path_of(iri: str) -> str:
    return "/" + iri[len(LOCAL) :].split("#", 1)[0]


def ask(client: TestClient, query: str) -> bool:
    response = client.get("/sparql", params={"query": query}, headers=JSON)
    assert response.status_code == 200, (query, response.text[:300])
    return response.json()["boolean"]


def construct(client: TestClient, query: str) -> Graph:
    response = client.get("/sparql", params={"query": query}, headers=TURTLE)
    assert response.status_code == 200, (query, response.text[:300])
    return Graph().parse(data=response.text, format="turtle")


@pytest.fixture(scope="module")
def linked(local_app: TestClient) -> dict[str, Graph]:
    """The three start documents and every document of ours they link to, by path."""
    docs = {path: fetch(local_app, path) for path in START}
    for iri in sorted(set().union(*(ours(g) for g in docs.values()))):
        path = path_of(iri)
        if path in docs or path == "/" or path.startswith(("/dumps/", "/about", "/sparql")):
            continue  # pages and files, not RDF documents: checked below
        docs[path] = fetch(local_app, path)
    return docs


def no_canonical(graph: Graph, canonical: str) -> Iterable[str]:
    return sorted(
        {str(t) for triple in graph for t in triple if isinstance(t, URIRef) and str(t).startswith(canonical)}
    )


def test_every_link_of_ours_is_written_in_the_clients_space(linked: dict[str, Graph]) -> None:
    assert len(linked) > 20, "Kassel's partners, sources, the VoID's partitions and the catalog's parts"
    for path, graph in linked.items():
        assert not list(no_canonical(graph, DEFAULT_BASE_IRI)), path


def test_every_link_dereferences(local_app: TestClient, linked: dict[str, Graph]) -> None:
    iris = set().union(*(ours(g) for g in linked.values()))
    for iri in sorted(iris):
        response = local_app.get(
            path_of(iri), headers={"Accept": "text/turtle, text/html;q=0.5, */*;q=0.1"}, follow_redirects=True
        )
        assert response.status_code == 200, (iri, response.status_code)


def test_every_thing_dereferenced_can_be_queried_with(
    local_app: TestClient, linked: dict[str, Graph]
) -> None:
    """Each thing (`/id/…`) the documents link to is in /sparql under the very IRI the
    client followed, and what /sparql says about it is what its document says."""
    things = sorted(iri for g in linked.values() for iri in ours(g) if iri.startswith(LOCAL + "id/"))
    assert len(things) > 20
    for iri in things:
        assert ask(local_app, f"ASK {{ <{iri}> ?p ?o }}"), iri
        about = construct(local_app, f"CONSTRUCT {{ <{iri}> ?p ?o }} WHERE {{ <{iri}> ?p ?o }}")
        document = linked.get(path_of(iri).replace("/id/", "/doc/", 1)) or fetch(
            local_app, path_of(iri).replace("/id/", "/doc/", 1)
        )
        missing = {t for t in about if isinstance(t[2], URIRef) and t not in document}
        assert not missing, (iri, sorted(missing)[:3])


def test_every_graph_the_void_and_service_description_name_exists(
    local_app: TestClient, linked: dict[str, Graph]
) -> None:
    service = fetch(local_app, "/sparql")
    names = {str(o) for g in (linked["/.well-known/void"], service) for o in g.objects(None, SD_NAME)}
    assert names and all(name.startswith(LOCAL) for name in names), names
    for name in sorted(names):
        assert ask(local_app, f"ASK {{ GRAPH <{name}> {{ ?s ?p ?o }} }}"), name
        response = local_app.get(
            "/sparql",
            params={"query": "SELECT (COUNT(*) AS ?n) { ?s ?p ?o }", "default-graph-uri": name},
            headers=JSON,
        )
        assert int(response.json()["results"]["bindings"][0]["n"]["value"]) > 0, name


def test_results_and_query_iris_round_trip(local_app: TestClient) -> None:
    """An IRI from a result, pasted into the next query, finds the same thing; the canonical
    IRI keeps working too (a client that read a dump)."""
    response = local_app.get(
        "/sparql",
        params={"query": f"SELECT ?p WHERE {{ ?p a <{LOCAL}ontology#Partnership> }} ORDER BY ?p LIMIT 1"},
        headers=JSON,
    )
    rows = response.json()["results"]["bindings"]
    assert rows, "the vocabulary IRI in the client's space matched"
    partnership = rows[0]["p"]["value"]
    assert partnership.startswith(LOCAL + "id/partnership/")
    assert ask(local_app, f"ASK {{ <{partnership}> ?p ?o }}")
    canonical = DEFAULT_BASE_IRI + partnership[len(LOCAL) :]
    assert ask(local_app, f"ASK {{ <{canonical}> ?p ?o }}")
    assert not ask(local_app, f"ASK {{ <{partnership}-no-such-thing> ?p ?o }}")
