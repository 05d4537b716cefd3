"""`remote_guard`: what the remote engine refuses to forward, read as the store would read it.

The end-to-end proof is in tests/test_virtuoso.py (a canary the store is asked to fetch);
here the rule itself, fast and without a store: the obfuscations an attacker would try,
and the standard queries that use the same words and must still pass.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from twinning_kg.query.remote_guard import QueryDataset, RemoteRefusal, check

EXAMPLES = sorted(
    (Path(__file__).resolve().parents[1] / "src" / "twinning_kg" / "web" / "queries").glob("*.rq")
)

REFUSED = {
    "bif full IRI": "SELECT (<bif:http_get>('http://x/') AS ?x) {}",
    "bif undeclared prefix": "SELECT (bif:http_get('http://x/') AS ?x) {}",
    "bif upper case": "SELECT (BIF:http_get('http://x/') AS ?x) {}",
    "bif through a prefix": "PREFIX b: <bif:> SELECT (b:http_get('http://x/') AS ?x) {}",
    "bif escaped": "SELECT (<\\u0062if:http_get>('http://x/') AS ?x) {}",
    "bif through BASE": "BASE <BIF:> SELECT (<http_get>('x') AS ?x) {}",
    "bif as a predicate": "SELECT * WHERE { ?s <bif:contains> '\"x\"' }",
    "sql procedure": "SELECT (<sql:RDF_QUAD_URI_L>('a') AS ?x) {}",
    "define": 'define get:soft "replace" SELECT * FROM <http://x/> { ?s ?p ?o }',
    "define mixed case after a comment": "# c\nDeFiNe input:default-graph-uri <urn:x> SELECT * { ?s ?p ?o }",
    "define escaped": "\\u0064efine input:default-graph-uri <urn:x> SELECT * { ?s ?p ?o }",
    "unknown function": "SELECT (<urn:f>(1) AS ?x) {}",
    "comment before the arguments": "SELECT (<urn:f> # c\n (1) AS ?x) {}",
    "xpath functions": "PREFIX fn: <http://www.w3.org/2005/xpath-functions#> SELECT (fn:doc('x') AS ?x) {}",
    "prefix declared twice": "PREFIX xsd: <http://www.w3.org/2001/XMLSchema#> PREFIX xsd: <urn:evil#> "
    "SELECT (xsd:integer('1') AS ?x) {}",
    "undeclared prefix": "SELECT (ex:f(1) AS ?x) {}",
    "empty prefix undeclared": "SELECT (:f(1) AS ?x) {}",
    "relative function IRI": "SELECT (<f>(1) AS ?x) {}",
    "an escaped quote that ends a string for one reader only": (
        'SELECT ("a\\u0022" AS ?x) (<urn:f>(1) AS ?y) ("b" AS ?z) {}'
    ),
}

ACCEPTED = {
    "xsd cast": "SELECT (<http://www.w3.org/2001/XMLSchema#integer>('1') AS ?x) {}",
    "xsd cast by prefix": "PREFIX xsd: <http://www.w3.org/2001/XMLSchema#> "
    "SELECT (xsd:integer('1') AS ?x) {}",
    "geosparql": "PREFIX geof: <http://www.opengis.net/def/function/geosparql/> "
    "SELECT (geof:sfEquals(?a, ?a) AS ?x) { BIND('POINT(1 2)' AS ?a) }",
    "a prefix named define": "PREFIX define: <urn:x#> SELECT ?x WHERE { BIND(define:y AS ?x) }",
    "a variable named define": "SELECT ?define WHERE { ?define ?p ?o }",
    "words in strings and comments": 'SELECT * WHERE { ?s ?p "define <urn:f>(1)" } # <urn:g>(2) define',
    "comparisons": 'SELECT ?s WHERE { ?s ?p ?o FILTER(?o < 3 && STR(?s) > "a") }',
    "built-in calls": "SELECT (COUNT(*) AS ?n) (STRLEN(STR(?s)) AS ?l) "
    "WHERE { ?s ?p ?o FILTER(REGEX(?o, 'x')) } GROUP BY ?s",
    "IRIs with parentheses and colons": "SELECT * WHERE { <http://ex.org/a(b)> <urn:p> ?o }",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name: str) -> None:
    with pytest.raises(RemoteRefusal):
        check(REFUSED[name])


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(name: str) -> None:
    check(ACCEPTED[name])


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_the_example_queries_pass(path: Path) -> None:
    check(path.read_text())


GRAPHS = frozenset({"https://w3id.org/twinning-kg/graph/kassel", "https://w3id.org/twinning-kg/graph/claims"})
BASE = "https://w3id.org/twinning-kg/"

DATASET_REFUSED = {
    "from a store graph": "SELECT * FROM <http://www.openlinksw.com/schemas/virtrdf#> WHERE { ?s ?p ?o }",
    "from named": "SELECT * FROM NAMED <urn:other> WHERE { GRAPH ?g { ?s ?p ?o } }",
    "from by prefix": "PREFIX v: <http://www.openlinksw.com/schemas/> "
    "SELECT * FROM v:virtrdf WHERE { ?s ?p ?o }",
    "from lower case, over lines": "select * from\n  named\n <urn:other> where { ?s ?p ?o }",
    "graph iri": "ASK { GRAPH <urn:nothing> { ?s ?p ?o } }",
    "graph relative to the base": "ASK { GRAPH <graph/nothing> { ?s ?p ?o } }",
    "graph relative to the query's base": "BASE <http://example.org/> "
    "ASK { GRAPH <graph/kassel> { ?s ?p ?o } }",
    "from something unreadable": "SELECT * FROM ?g WHERE { ?s ?p ?o }",
    "escaped": "SELECT * FROM <urn:\\u006fther> WHERE { ?s ?p ?o }",
}

DATASET_ACCEPTED = {
    "from a release graph": "SELECT * FROM <https://w3id.org/twinning-kg/graph/kassel> WHERE { ?s ?p ?o }",
    "graph variable": "SELECT ?g WHERE { GRAPH ?g { ?s ?p ?o } }",
    "graph relative to the base": "ASK { GRAPH <graph/kassel> { ?s ?p ?o } }",
    "graph by prefix": "PREFIX g: <https://w3id.org/twinning-kg/graph/> ASK { GRAPH g:claims { ?s ?p ?o } }",
    "graph with from named": "SELECT * FROM <https://w3id.org/twinning-kg/graph/kassel> "
    "FROM NAMED <https://w3id.org/twinning-kg/graph/claims> WHERE { GRAPH ?g { ?s ?p ?o } }",
    "the words elsewhere": 'SELECT ?from ?graph WHERE { ?from <urn:graph> "FROM <urn:x>" } # GRAPH <urn:y>',
}


@pytest.mark.parametrize("name", sorted(DATASET_REFUSED))
def test_dataset_outside_the_release_refused(name: str) -> None:
    with pytest.raises(RemoteRefusal, match="graph"):
        check(DATASET_REFUSED[name], GRAPHS, BASE)


@pytest.mark.parametrize("name", sorted(DATASET_ACCEPTED))
def test_dataset_within_the_release_accepted(name: str) -> None:
    check(DATASET_ACCEPTED[name], GRAPHS, BASE)


def test_the_query_dataset_is_read_for_the_engine() -> None:
    dataset = check(
        "PREFIX g: <https://w3id.org/twinning-kg/graph/> SELECT * FROM g:kassel FROM NAMED <graph/claims> "
        "FROM g:kassel WHERE { GRAPH ?g { ?s ?p ?o } }",
        GRAPHS,
        BASE,
    )
    assert dataset == QueryDataset(
        ("https://w3id.org/twinning-kg/graph/kassel",), ("https://w3id.org/twinning-kg/graph/claims",)
    )
    assert check("SELECT * WHERE { GRAPH <graph/kassel> { ?s ?p ?o } }", GRAPHS, BASE) is None
