"""Real SPARQL clients against the real server: SPARQLWrapper, rdflib's SPARQLStore, curl."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDFS
from rdflib.plugins.stores.sparqlstore import SPARQLStore
from SPARQLWrapper import JSON, POST, TURTLE, XML, SPARQLWrapper

from twinning_kg.config import DEFAULT_BASE_IRI

KASSEL = URIRef(f"{DEFAULT_BASE_IRI}id/place/kassel")
LABELS = f"SELECT ?label WHERE {{ <{KASSEL}> <{RDFS.label}> ?label }}"


@pytest.mark.parametrize("method", ["GET", POST])
def test_sparqlwrapper_select_ask_construct(base_url: str, method: str) -> None:
    client = SPARQLWrapper(f"{base_url}/sparql")
    client.setMethod(method)
    client.setQuery(LABELS)
    client.setReturnFormat(JSON)
    rows = client.query().convert()["results"]["bindings"]
    assert {"type": "literal", "value": "Kassel", "xml:lang": "de"} in [r["label"] for r in rows]

    client.setQuery(f"ASK {{ <{KASSEL}> ?p ?o }}")
    client.setReturnFormat(XML)
    assert client.query().convert().getElementsByTagName("boolean")[0].firstChild.data == "true"

    client.setQuery(f"CONSTRUCT WHERE {{ <{KASSEL}> <{RDFS.label}> ?o }}")
    client.setReturnFormat(TURTLE)
    graph = Graph().parse(data=client.query().convert(), format="turtle")
    assert (KASSEL, RDFS.label, Literal("Kassel", lang="de")) in graph


def test_sparqlwrapper_sees_errors_as_errors(base_url: str) -> None:
    from SPARQLWrapper.SPARQLExceptions import QueryBadFormed

    client = SPARQLWrapper(f"{base_url}/sparql")
    client.setQuery("SELECT * WHERE { ?s ")
    client.setReturnFormat(JSON)
    with pytest.raises(QueryBadFormed):
        client.query()


def test_rdflib_sparqlstore(base_url: str) -> None:
    store = SPARQLStore(f"{base_url}/sparql", returnFormat="json")
    graph = Graph(store=store)
    labels = {row.label for row in graph.query(LABELS)}
    assert Literal("Kassel", lang="de") in labels
    assert (KASSEL, RDFS.label, Literal("Kassel", lang="de")) in graph  # triple pattern -> SELECT
    assert graph.query(f"ASK {{ <{KASSEL}> ?p ?o }}").askAnswer is True
    store.close()


def test_curl(base_url: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    out = subprocess.run(
        [
            curl,
            "-sS",
            "--fail",
            "-H",
            "Accept: application/sparql-results+json",
            "--data-urlencode",
            f"query={LABELS}",
            f"{base_url}/sparql",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "Kassel" in [b["label"]["value"] for b in json.loads(out)["results"]["bindings"]]
    direct = subprocess.run(
        [
            curl,
            "-sS",
            "--fail",
            "-H",
            "Content-Type: application/sparql-query",
            "-H",
            "Accept: text/csv",
            "--data-binary",
            LABELS,
            f"{base_url}/sparql",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert direct.splitlines()[0] == "label"
    refused = subprocess.run(
        [
            curl,
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--data-urlencode",
            "update=CLEAR ALL",
            f"{base_url}/sparql",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert refused == "403"
