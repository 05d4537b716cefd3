"""The query guard on its own: what it refuses, what it lets through, and that it is not fooled.

(The same attacks over HTTP are in test_sparql_safety.py; these are the corner cases of
the text itself: prefixed names, BASE, \\u escapes, comments, strings.)
"""

from __future__ import annotations

import pytest

from twinning_kg.query_guard import GuardError, check
from twinning_kg.result_formats import negotiate

WIKIDATA = "https://query.wikidata.org/sparql"
ALLOW = (WIKIDATA,)
BASE = "https://w3id.org/twinning-kg/"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE SILENT <http://evil.example/> { ?s ?p ?o } }",
        "PREFIX e: <http://evil.example/> SELECT * WHERE { SERVICE e:sparql { ?s ?p ?o } }",
        "BASE <http://evil.example/> SELECT * WHERE { SERVICE <sparql> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE <sparql> { ?s ?p ?o } }",  # relative: resolves under our base
        "SELECT * WHERE { \\u0053ERVICE <http://evil.example/> { ?s ?p ?o } }",
        "SELECT * WHERE { sErViCe <http://evil.example/> { ?s ?p ?o } }",
        "SELECT * WHERE { ?s ?p ?o # }\n SERVICE <http://evil.example/> { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE ?where { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE <file:///etc/passwd> { ?s ?p ?o } }",
        # allowed outside, forbidden inside: every SERVICE counts
        f"SELECT * WHERE {{ SERVICE <{WIKIDATA}> {{ SERVICE <http://evil.example/> {{ ?s ?p ?o }} }} }}",
        "SELECT * WHERE { { SELECT ?s WHERE { SERVICE <http://evil.example/> { ?s ?p ?o } } } }",
        "ASK { FILTER EXISTS { SERVICE <http://evil.example/> { ?s ?p ?o } } }",
    ],
)
def test_service_outside_the_allow_list_is_refused(query: str) -> None:
    with pytest.raises(GuardError) as refused:
        check(query, ALLOW, base_iri=BASE)
    # 403 refused; 400 where rdflib cannot analyse the query (nested SERVICE): refused too
    assert refused.value.status in (400, 403)
    assert "SERVICE" in refused.value.message


@pytest.mark.parametrize(
    "query",
    [
        f"SELECT * WHERE {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }}",
        "PREFIX wdqs: <https://query.wikidata.org/> SELECT * WHERE { SERVICE wdqs:sparql { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE <https://query.wiki\\u0064ata.org/sparql> { ?s ?p ?o } }",
    ],
)
def test_allowed_service_passes(query: str) -> None:
    info = check(query, ALLOW, base_iri=BASE)
    assert info.services == (WIKIDATA,)


def test_empty_allow_list_refuses_every_service() -> None:
    with pytest.raises(GuardError):
        check(f"SELECT * WHERE {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }}", (), base_iri=BASE)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { ?s <http://example.org/service> 'SERVICE <http://evil/> {}' }",
        "# SERVICE <http://evil.example/> { }\nSELECT * WHERE { ?s ?p ?o }",
        "PREFIX service: <http://example.org/> SELECT ?service WHERE { ?service service:x ?o }",
    ],
)
def test_the_word_service_elsewhere_is_harmless(query: str) -> None:
    assert check(query, (), base_iri=BASE).services == ()


@pytest.mark.parametrize(
    "update",
    [
        "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
        "LOAD <file:///etc/passwd>",
        "load <http://example.org/data.ttl> INTO GRAPH <urn:g>",
        "PREFIX ex: <http://example.org/#> DELETE WHERE { ?s ex:p ?o }",
        "BASE <http://example.org/> # a comment\n CLEAR ALL",
        "WITH <urn:g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
        "\\u0044ROP ALL",
        "CREATE GRAPH <urn:g>",
        "COPY <urn:a> TO <urn:b>",
    ],
)
def test_updates_are_refused_as_read_only(update: str) -> None:
    with pytest.raises(GuardError) as refused:
        check(update, ALLOW)
    assert refused.value.status == 403
    assert "read-only" in refused.value.message


@pytest.mark.parametrize(
    ("query", "form", "has_dataset"),
    [
        ("ASK {}", "ASK", False),
        ("PREFIX from: <urn:x#> SELECT ?from WHERE { ?from from:x 'FROM <urn:y>' }", "SELECT", False),
        ("SELECT * FROM <urn:g> WHERE { ?s ?p ?o }", "SELECT", True),
        ("select * from named <urn:g> where { graph ?g { ?s ?p ?o } }", "SELECT", True),
        ("PREFIX ex: <urn:ex#> CONSTRUCT WHERE { ?s ex:from ?o }", "CONSTRUCT", False),
        ("# DESCRIBE\nDESCRIBE <urn:x>", "DESCRIBE", False),
    ],
)
def test_query_form_and_dataset_clause(query: str, form: str, has_dataset: bool) -> None:
    info = check(query, ALLOW)
    assert info.form == form
    assert info.has_dataset_clause is has_dataset


@pytest.mark.parametrize(
    ("form", "accept", "media_type"),
    [
        ("SELECT", None, "application/sparql-results+xml"),
        ("SELECT", "*/*", "application/sparql-results+xml"),
        ("SELECT", "text/csv;q=0.4, application/sparql-results+json", "application/sparql-results+json"),
        ("SELECT", "text/*", "text/csv"),
        ("SELECT", "application/json", "application/json"),
        ("SELECT", "image/png", "application/sparql-results+xml"),
        ("SELECT", "application/sparql-results+json;q=0, */*;q=0.1", "application/sparql-results+xml"),
        ("ASK", "text/csv", "application/sparql-results+xml"),
        ("CONSTRUCT", None, "application/rdf+xml"),
        ("DESCRIBE", "application/n-triples, text/turtle;q=0.5", "application/n-triples"),
        ("CONSTRUCT", "application/ld+json", "application/ld+json"),
    ],
)
def test_negotiation(form: str, accept: str | None, media_type: str) -> None:
    assert negotiate(form, accept).media_type == media_type
