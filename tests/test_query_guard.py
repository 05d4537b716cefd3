"""The query guard and its SPARQL reader on their own: what they refuse, what they let
through, and that they are not fooled.

The same attacks over HTTP, against the real server and a listener, are in
test_egress.py; here the corner cases of the text itself, the W3C syntax tests, the
RFC 3986 resolution examples, and proof that the attack battery is real (pyoxigraph
alone calls the listener for it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyoxigraph as ox
import pytest

from sparql_support import Listener, escape_differentials, spellings
from twinning_kg.query.guard import GuardError, check
from twinning_kg.query.negotiation import NotAcceptable
from twinning_kg.query.result_formats import negotiate, without_xml, xml_forbidden
from twinning_kg.query.sandbox import relay_url
from twinning_kg.query.syntax import Budget, QuerySyntaxError, analyse, resolve

WIKIDATA = "https://query.wikidata.org/sparql"
ALLOW = (WIKIDATA,)
BASE = "https://w3id.org/twinning-kg/"
W3C = json.loads((Path(__file__).parent / "fixtures" / "w3c-sparql-query-syntax.json").read_text("utf-8"))


# ------------------------------------------------------------------ the grammar, per the W3C tests


@pytest.mark.parametrize("case", [t for t in W3C["tests"] if t["positive"]], ids=lambda t: t["name"])
def test_every_w3c_query_is_read(case: dict) -> None:
    """Positive syntax tests and the queries of the evaluation tests (SPARQL 1.0 and 1.1)."""
    analyse(case["query"], "http://example.org/base/")


@pytest.mark.parametrize("case", [t for t in W3C["tests"] if not t["positive"]], ids=lambda t: t["name"])
def test_no_w3c_negative_syntax_test_passes_both_parsers(case: dict) -> None:
    """Our reader checks the grammar, not the scoping rules (blank-node labels across
    patterns, BIND over a bound variable, ungrouped variables): those it may accept, and
    then pyoxigraph's parser must refuse them, so the answer is still a 400."""
    try:
        analyse(case["query"], "http://example.org/base/")
    except QuerySyntaxError:
        return
    with pytest.raises(SyntaxError):
        ox.Store().query(case["query"], base_iri="http://example.org/base/")


def test_the_longest_token_rule_makes_an_iri_of_a_comparison_without_spaces() -> None:
    """syn-bad-26: `?x<?a&&?b>?y` holds the IRI `<?a&&?b>` (SPARQL 1.1 §19.8)."""
    with pytest.raises(GuardError) as refused:
        check("SELECT * WHERE { FILTER (?x<?a&&?b>?y) }", ALLOW, BASE)
    assert refused.value.status == 400
    assert "put spaces around < and >" in refused.value.message
    assert check("SELECT * WHERE { FILTER (?x < ?a && ?b > ?y) }", ALLOW, BASE).services == ()


# RFC 3986 §5.4.1 and §5.4.2, base "http://a/b/c/d;p?q"
RFC3986 = {
    "g:h": "g:h", "g": "http://a/b/c/g", "./g": "http://a/b/c/g", "g/": "http://a/b/c/g/",
    "/g": "http://a/g", "//g": "http://g", "?y": "http://a/b/c/d;p?y", "g?y": "http://a/b/c/g?y",
    "#s": "http://a/b/c/d;p?q#s", "g#s": "http://a/b/c/g#s", "g?y#s": "http://a/b/c/g?y#s",
    ";x": "http://a/b/c/;x", "g;x": "http://a/b/c/g;x", "g;x?y#s": "http://a/b/c/g;x?y#s",
    "": "http://a/b/c/d;p?q", ".": "http://a/b/c/", "./": "http://a/b/c/", "..": "http://a/b/",
    "../": "http://a/b/", "../g": "http://a/b/g", "../..": "http://a/", "../../": "http://a/",
    "../../g": "http://a/g", "../../../g": "http://a/g", "../../../../g": "http://a/g",
    "/./g": "http://a/g", "/../g": "http://a/g", "g.": "http://a/b/c/g.", ".g": "http://a/b/c/.g",
    "g..": "http://a/b/c/g..", "..g": "http://a/b/c/..g", "./../g": "http://a/b/g",
    "./g/.": "http://a/b/c/g/", "g/./h": "http://a/b/c/g/h", "g/../h": "http://a/b/c/h",
    "g;x=1/./y": "http://a/b/c/g;x=1/y", "g;x=1/../y": "http://a/b/c/y", "g?y/./x": "http://a/b/c/g?y/./x",
    "g?y/../x": "http://a/b/c/g?y/../x", "g#s/./x": "http://a/b/c/g#s/./x",
    "g#s/../x": "http://a/b/c/g#s/../x", "http:g": "http:g",
}  # fmt: skip


@pytest.mark.parametrize(("reference", "expected"), RFC3986.items())
def test_relative_iris_resolve_as_rfc3986_says(reference: str, expected: str) -> None:
    assert resolve(reference, "http://a/b/c/d;p?q") == expected


# ------------------------------------------------------------------ SERVICE


@pytest.mark.parametrize("query", spellings("http://127.0.0.1:9/sparql"))
def test_service_outside_the_allow_list_is_refused_however_spelt(query: str) -> None:
    with pytest.raises(GuardError) as refused:
        check(query, ALLOW, base_iri=BASE)
    assert refused.value.status in (400, 403), refused.value.message
    assert "SERVICE" in refused.value.message or "syntax" in refused.value.message


def test_the_attack_battery_is_real() -> None:
    """Without guard or isolation, pyoxigraph calls the listener for every spelling it
    can parse and evaluate (all but the variable targets, which it cannot evaluate, and
    the \\u-escaped keywords it does not decode)."""
    listener = Listener()
    store = ox.Store()
    store.add(ox.Quad(ox.NamedNode("urn:a"), ox.NamedNode("urn:b"), ox.NamedNode("urn:c")))
    missed = []
    try:
        for query in spellings(listener.url) + escape_differentials(listener.url):
            before = len(listener.received)
            try:
                result = store.query(query, base_iri=BASE)
                if hasattr(result, "__iter__"):
                    list(result)
            except SyntaxError:
                continue
            except (OSError, RuntimeError):
                pass  # the listener answers 500; a variable target is unbound
            deadline = time.monotonic() + 2
            while len(listener.received) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            if len(listener.received) == before and "SERVICE ?" not in query and "SERVICE $" not in query:
                missed.append(query)
    finally:
        listener.close()
    assert missed == []


@pytest.mark.parametrize("query", escape_differentials("http://127.0.0.1:9/sparql"))
def test_the_engine_runs_the_text_the_guard_read(query: str) -> None:
    """SPARQL applies \\u escapes before anything else (§19.2); pyoxigraph only inside
    strings and IRIs. Given what we received it would call the service hidden, for us,
    inside a string; given what the guard read, it sees the string too."""
    info = check(query, ALLOW, base_iri=BASE)
    assert info.services == ()
    text = info.routed(lambda iri: "unused")
    assert "\\u" not in text and text != query
    result = ox.Store().query(text, base_iri=BASE)
    assert list(result) == []  # a plain query over an empty store: nothing called


@pytest.mark.parametrize(
    "query",
    [
        f"SELECT * WHERE {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }}",
        "PREFIX wdqs: <https://query.wikidata.org/> SELECT * WHERE { SERVICE wdqs:sparql { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE <https://query.wiki\\u0064ata.org/sparql> { ?s ?p ?o } }",
        "BASE <https://query.wikidata.org/x/> SELECT * WHERE { SERVICE <../sparql> { ?s ?p ?o } }",
        "PREFIX w: <https://query.wikidata.org/> SELECT * WHERE { SERVICE SILENT w:sp\\-arql { } }".replace(
            "sp\\-arql", "sparql"
        ),
    ],
)
def test_allowed_service_passes_and_is_routed_to_the_relay(query: str) -> None:
    info = check(query, ALLOW, base_iri=BASE)
    assert info.services == (WIKIDATA,)
    routed = info.routed(lambda iri: relay_url(ALLOW.index(iri)))
    assert f"<{relay_url(0)}>" in routed
    assert "wikidata" not in routed.split("SERVICE", 1)[1]  # the target itself, not elsewhere


def test_nested_services_to_the_allowed_endpoint_work_and_only_the_outer_is_routed() -> None:
    query = f"SELECT * WHERE {{ SERVICE <{WIKIDATA}> {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }} }}"
    info = check(query, ALLOW, base_iri=BASE)
    assert info.services == (WIKIDATA,)
    routed = info.routed(lambda iri: relay_url(0))
    # the inner clause travels as text to the outer service: our relay's address must not
    assert routed.count(relay_url(0)) == 1 and routed.count(WIKIDATA) == 1


def test_service_inside_60_nested_optionals_works() -> None:
    clause = f"SERVICE <{WIKIDATA}> {{ ?s ?p ?o }}"
    query = "SELECT * WHERE { " + "OPTIONAL { " * 60 + clause + " }" * 60 + " }"
    assert check(query, ALLOW, base_iri=BASE).services == (WIKIDATA,)


@pytest.mark.parametrize(
    "query",
    [
        # allowed and forbidden siblings, both orders; and nested, both ways
        f"SELECT * {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} SERVICE <http://evil.example/> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE <http://evil.example/> {{ ?s ?p ?o }} SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE <{WIKIDATA}> {{ SERVICE <http://evil.example/> {{ ?s ?p ?o }} }} }}",
        f"SELECT * {{ SERVICE <http://evil.example/> {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }} }}",
    ],
)
def test_one_forbidden_service_refuses_the_whole_query(query: str) -> None:
    with pytest.raises(GuardError) as refused:
        check(query, ALLOW, base_iri=BASE)
    assert refused.value.status == 403
    assert "evil.example" in refused.value.message


@pytest.mark.parametrize(
    "target",
    [
        "https://query.wikidata.org/sparq",  # prefix
        "https://query.wikidata.org/sparql2",  # suffix
        "https://query.wikidata.org/sparql/",  # trailing slash
        "http://query.wikidata.org/sparql",  # other scheme
        "https://query.wikidata.org:443/sparql",  # explicit default port
        "https://query.wikidata.org:8443/sparql",  # other port
        "https://QUERY.wikidata.org/sparql",  # host spelling
        "https://query.wikidata.org/sparql?query=x",  # query string
        "https://query.wikidata.org/sparql#x",  # fragment
        "https://query.wikidata.org.evil.example/sparql",
        "https://evil.example/https://query.wikidata.org/sparql",
    ],
)
def test_near_misses_of_the_allow_list_are_refused(target: str) -> None:
    with pytest.raises(GuardError) as refused:
        check(f"SELECT * {{ SERVICE <{target}> {{ ?s ?p ?o }} }}", ALLOW, base_iri=BASE)
    assert refused.value.status == 403


def test_empty_allow_list_refuses_every_service() -> None:
    with pytest.raises(GuardError):
        check(f"SELECT * WHERE {{ SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} }}", (), base_iri=BASE)


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { ?s <http://example.org/service> 'SERVICE <http://evil/> {}' }",
        "# SERVICE <http://evil.example/> { }\nSELECT * WHERE { ?s ?p ?o }",
        "PREFIX service: <http://example.org/> SELECT ?service WHERE { ?service service:x ?o }",
        "SELECT * WHERE { ?s ?p \"\"\"\nSERVICE <http://evil.example/> { }\n\"\"\" }",
        "SELECT * WHERE { ?s <http://example.org/a#SERVICE> ?o }",
    ],
)
def test_the_word_service_elsewhere_is_harmless(query: str) -> None:
    assert check(query, (), base_iri=BASE).services == ()


# ------------------------------------------------------------------ budget, escapes, updates


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("SELECT * WHERE { " + f"SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} " * 150 + "}", "SERVICE clauses"),
        ("SELECT * WHERE { " + f"SERVICE <{WIKIDATA}> {{ ?s ?p ?o }} " * 300 + "}", "SERVICE clauses"),
        ("SELECT * WHERE { " + "{ " * 2000 + "}" * 2000 + " }", "nests deeper"),
        ("ASK { FILTER(" + "(" * 2000 + "1" + ")" * 2000 + ") }", "nests deeper"),
        ("ASK { FILTER(" + " + ".join(["1"] * 15_000) + ") }", "tokens"),
        ("ASK {} #" + "x" * 250_000, "characters"),
    ],
)
def test_over_budget_is_refused_fast_with_422(query: str, says: str) -> None:
    started = time.perf_counter()
    with pytest.raises(GuardError) as refused:
        check(query, ALLOW, base_iri=BASE)
    assert time.perf_counter() - started < 1.0  # milliseconds in fact; rdflib took 17-100 s
    assert refused.value.status == 422
    assert says in refused.value.message


def test_the_budget_is_configurable() -> None:
    query = "SELECT * WHERE { " + "{ " * 30 + "}" * 30 + " }"
    check(query, (), BASE, Budget(max_depth=40))
    with pytest.raises(GuardError):
        check(query, (), BASE, Budget(max_depth=20))


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ('SELECT * WHERE { ?s ?p "\\UFFFFFFFF" }', "\\UFFFFFFFF is not a Unicode character"),
        ('SELECT * WHERE { ?s ?p "\\U00110000" }', "beyond U+10FFFF"),
        ('SELECT * WHERE { ?s ?p "\\uD800" }', "surrogate"),
        ('SELECT * WHERE { ?s ?p "\\u005Cu0041" }', "an escape produces another escape"),
    ],
)
def test_bad_escapes_get_a_sparql_message(query: str, says: str) -> None:
    with pytest.raises(GuardError) as refused:
        check(query, ALLOW, base_iri=BASE)
    assert refused.value.status == 400
    assert refused.value.message.startswith("SPARQL syntax error at 1:")
    assert says in refused.value.message
    assert "chr()" not in refused.value.message


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


def test_a_syntax_error_names_line_and_column() -> None:
    with pytest.raises(GuardError) as refused:
        check("SELECT * WHERE {\n  ?s ?p\n}", ALLOW)
    assert refused.value.status == 400
    assert refused.value.message == (
        "SPARQL syntax error at 3:1: expected a variable or an RDF term, found '}'"
    )


# ------------------------------------------------------------------ negotiation


@pytest.mark.parametrize(
    ("form", "accept", "media_type"),
    [
        ("SELECT", None, "application/sparql-results+xml"),
        ("SELECT", "*/*", "application/sparql-results+xml"),
        ("SELECT", "text/csv;q=0.4, application/sparql-results+json", "application/sparql-results+json"),
        ("SELECT", "text/*", "text/csv"),
        ("SELECT", "application/json", "application/json"),
        ("SELECT", "image/png", None),
        ("SELECT", "application/sparql-results+json;q=0, */*;q=0.1", "application/sparql-results+xml"),
        ("ASK", "text/csv", None),
        ("CONSTRUCT", "application/sparql-results+xml", None),
        ("SELECT", "text/turtle", None),
        ("CONSTRUCT", None, "application/rdf+xml"),
        ("DESCRIBE", "application/n-triples, text/turtle;q=0.5", "application/n-triples"),
        ("CONSTRUCT", "application/ld+json", "application/ld+json"),
    ],
)
def test_negotiation(form: str, accept: str | None, media_type: str | None) -> None:
    """None: nothing acceptable, a 406 (the one negotiation policy, docs/web.md)."""
    try:
        chosen = negotiate(form, accept).media_type
    except NotAcceptable:
        chosen = None
    assert chosen == media_type


@pytest.mark.parametrize(
    ("form", "accept", "media_type"),
    [
        ("SELECT", None, "application/sparql-results+json"),
        ("SELECT", "application/sparql-results+xml, text/csv;q=0.5", "text/csv"),
        ("SELECT", "application/sparql-results+xml, */*;q=0.1", "application/sparql-results+json"),
        ("SELECT", "application/sparql-results+xml", None),
        ("SELECT", "application/xml, text/xml", None),
        ("CONSTRUCT", "*/*", "text/turtle"),
        ("CONSTRUCT", "application/rdf+xml", None),
        ("CONSTRUCT", "application/rdf+xml, application/n-triples;q=0.2", "application/n-triples"),
    ],
)
def test_what_replaces_xml_when_xml_cannot_carry_the_result(
    form: str, accept: str | None, media_type: str | None
) -> None:
    choice = without_xml(form, accept)
    assert (choice.media_type if choice else None) == media_type


def test_characters_xml_forbids_are_found() -> None:
    assert xml_forbidden("<a>tab\tnew line\ncr\r é ok</a>".encode()) is None
    for char, name in (("\x00", "U+0000"), ("\x01", "U+0001"), ("\x0b", "U+000B"), ("\ufffe", "U+FFFE")):
        assert xml_forbidden(f"<a>x{char}y</a>".encode()) == name
