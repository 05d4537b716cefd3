"""The guard's plain path (`guard.plain`) and the worker's short cuts around it.

A plain query runs without the full reading, so the claim it rests on is tested here
against everything we have that a guard must get right: every W3C syntax test (positive
and negative) and the attack battery of test_query_guard.py. Whatever the plain path
takes, the full reader reads with no SERVICE, no dataset clause, within the budget and
with the same form; and a malformed query it takes is one the engine refuses too, so
the answer is still the reader's 400.

The worker's side is tested in process, on `worker._run_job` with a real pyoxigraph
store: a wrong guess of the form, an update, a syntax error; and the row cap on the
direct JSON path at its exact boundary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyoxigraph as ox
import pytest

from sparql_support import escape_differentials, spellings
from twinning_kg.query import worker
from twinning_kg.query.guard import plain
from twinning_kg.query.syntax import Budget, BudgetExceeded, QuerySyntaxError, UpdateRequest, analyse
from twinning_kg.query.worker_messages import Answer, Job, Refusal

BASE = "https://w3id.org/twinning-kg/"
W3C = json.loads((Path(__file__).parent / "fixtures" / "w3c-sparql-query-syntax.json").read_text("utf-8"))
BATTERY = spellings("http://127.0.0.1:9/sparql") + escape_differentials("http://127.0.0.1:9/sparql")
EVERYTHING = [t["query"] for t in W3C["tests"]] + BATTERY
JSON = "application/sparql-results+json"


@pytest.mark.parametrize(
    ("budget", "at_least"),
    [(Budget(), 700), (Budget(max_chars=300, max_tokens=80, max_depth=6), 50)],
    ids=["default budget", "small budget"],
)
def test_a_plain_query_holds_nothing_the_guard_stops(budget: Budget, at_least: int) -> None:
    taken = 0
    for query in EVERYTHING:
        info = plain(query, budget)
        if info is None:
            continue
        taken += 1
        try:
            analysis = analyse(query, "http://example.org/base/", budget)
        except (BudgetExceeded, UpdateRequest) as exc:
            pytest.fail(f"the plain path took what the guard refuses ({exc}): {query!r}")
        except QuerySyntaxError:
            # malformed for the grammar: the engine must refuse it too (then the worker
            # reads it in full and answers the reader's 400)
            with pytest.raises(SyntaxError):
                ox.Store().query(query, base_iri="http://example.org/base/")
            continue
        assert analysis.services == (), query
        assert analysis.has_dataset_clause is False, query
        assert analysis.form == info.form, query
        assert info.text == query and info.spans == ()
    assert taken >= at_least  # the path is taken at all: the claims above are not vacuous


@pytest.mark.parametrize("query", BATTERY)
def test_no_spelling_of_service_is_plain(query: str) -> None:
    assert plain(query, Budget()) is None


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * WHERE { ?x ?p ?y FILTER(?x<?a&&?b>?y) }",  # W3C syn-bad-26: an IRI for the grammar
        "SELECT * WHERE { ?x ?p ?y FILTER(?x <=?y>) }",
        "SELECT * WHERE { ?s <urn:p> 'fr\\u006Fm' }",  # a backslash: escapes are the reader's
        "SELECT * WHERE { ?s ?p 'Zürich' }",  # not ASCII
        "SELECT ?service WHERE { ?service ?p ?o }",  # the word anywhere is enough
        "SELECT * WHERE { ?s ?p 'from' }",
        "SELECT * WHERE { " + "{ " * 60 + "}" * 60 + " }",  # nesting beyond the budget
        "PREFIX : <urn:x#> INSERT DATA { :a :b :c }",  # no query form at all
    ],
)
def test_what_the_plain_path_leaves_to_the_full_reader(query: str) -> None:
    assert plain(query, Budget()) is None


# ------------------------------------------------------------------ the worker's side


@pytest.fixture(scope="module")
def store() -> ox.Store:
    data = ox.Store()
    for i in range(50):
        subject = ox.NamedNode(f"urn:s{i:02d}")
        data.add(ox.Quad(subject, ox.NamedNode("urn:p"), ox.Literal(f"o{i}"), ox.NamedNode("urn:g")))
    return data


def run(store: ox.Store, query: str, accept: str = JSON, max_rows: int = 1000) -> Answer | Refusal:
    config = worker.WorkerConfig(
        store_path="",
        max_rows=max_rows,
        memory_mb=0,
        isolation="seccomp",
        egress_socket=None,
        allowlist=(),
        base_iri=BASE,
        budget=Budget(),
    )
    job = Job(query, (), (), True, accept, BASE, None)
    return worker._run_job(ox, store, job, max_rows, worker._Guard(config, None))


@pytest.mark.parametrize(("accept", "media_type"), [(JSON, JSON), ("text/csv", "text/csv; charset=utf-8")])
def test_a_wrong_guess_of_the_form_is_read_in_full(store: ox.Store, accept: str, media_type: str) -> None:
    """`ask:` is a prefix here: the guess says ASK (which has no CSV: a 406 for the guess),
    the query is a SELECT, answered as one."""
    query = "PREFIX ask: <urn:> SELECT ?s WHERE { ?s ask:p ?o } ORDER BY ?s LIMIT 2"
    assert plain(query, Budget()).form == "ASK"
    reply = run(store, query, accept)
    assert isinstance(reply, Answer), reply
    assert (reply.form, reply.media_type) == ("SELECT", media_type)
    assert b"urn:s00" in reply.body and b"urn:s02" not in reply.body


def test_an_update_sent_as_a_query_is_refused_as_read_only(store: ox.Store) -> None:
    reply = run(store, "INSERT DATA { <urn:select> <urn:p> <urn:o> }")
    assert isinstance(reply, Refusal) and reply.status == 403 and "read-only" in reply.message


def test_a_malformed_plain_query_gets_the_readers_message(store: ox.Store) -> None:
    reply = run(store, "SELECT * WHERE { ?s ?p }")
    assert isinstance(reply, Refusal) and reply.status == 400
    assert reply.message.startswith("SPARQL syntax error at 1:")


def test_a_json_answer_is_written_directly(store: ox.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TSV detour (the counting writer is not used) and the engine's own bytes."""

    def no_counting(*_args: object) -> None:
        raise AssertionError("the TSV row count was used for a small JSON answer")

    monkeypatch.setattr(worker, "_CappedWriter", no_counting)
    query = "SELECT ?s ?o WHERE { ?s <urn:p> ?o } ORDER BY ?s"
    reply = run(store, query)
    union = store.query(query, use_default_graph_as_union=True)
    assert isinstance(reply, Answer) and reply.body == union.serialize(format=ox.QueryResultsFormat.JSON)


@pytest.mark.parametrize(
    ("query", "rows"),
    [
        ("SELECT ?x WHERE { VALUES ?x { UNDEF UNDEF UNDEF } }", 3),  # rows of `{}`
        ("SELECT ?s WHERE { ?s <urn:p> ?o }", 50),
        ("SELECT ?s ?o WHERE { ?s <urn:p> ?o }", 50),
        # literals holding the row boundary: the bound overshoots, the count decides
        ("SELECT ?x WHERE { VALUES ?x { '},{},{' '},{' '}' } }", 3),
        ("SELECT ?x WHERE { VALUES ?x { 1 } }", 1),
    ],
)
def test_the_row_cap_holds_at_its_boundary_on_the_direct_path(store: ox.Store, query: str, rows: int) -> None:
    exact = run(store, query, max_rows=rows)
    assert isinstance(exact, Answer), exact
    assert len(json.loads(exact.body)["results"]["bindings"]) == rows
    over = run(store, query, max_rows=rows - 1)
    assert isinstance(over, Refusal) and over.status == 422 and f"more than {rows - 1} rows" in over.message


def test_the_json_writer_separates_rows_as_the_bound_counts() -> None:
    """The direct path's premise, checked against this pyoxigraph (a worker checks it too)."""
    assert worker.json_rows_bounded(ox)
    for rows in (0, 1, 2, 7):
        values = " ".join(f"<urn:x{i}>" for i in range(rows))
        body = ox.Store().query(f"SELECT ?x ?y WHERE {{ VALUES ?x {{ {values} }} }}").serialize(
            format=ox.QueryResultsFormat.JSON
        )
        assert body.count(worker.JSON_ROW_BOUNDARY) == max(0, rows - 1)


def test_a_row_cap_of_zero_answers_only_the_empty_result(store: ox.Store) -> None:
    empty = run(store, "SELECT ?s WHERE { ?s <urn:nothing> ?o }", max_rows=0)
    assert isinstance(empty, Answer) and json.loads(empty.body)["results"]["bindings"] == []
    one = run(store, "SELECT ?x WHERE { VALUES ?x { 1 } }", max_rows=0)
    assert isinstance(one, Refusal) and one.status == 422
