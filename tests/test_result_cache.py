"""The /sparql result cache: X-Cache, ETag and 304, what is never kept, its bound, and a
release switch. Real server where the protocol matters; the cache object itself for its
bound and for answers a test cannot provoke cheaply (a federated one)."""

from __future__ import annotations

import asyncio
import gzip
import shutil
from pathlib import Path

import httpx

from conftest import ServerProcess
from sparql_support import serve
from test_release_lease import LABEL_QUERY, _label_or_none, publish, wait_for
from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryError, QueryRequest, QueryResult
from twinning_kg.release.reader import Release
from twinning_kg.web.compression import gzip_body
from twinning_kg.web.context import AppContext
from twinning_kg.web.result_cache import ENTRY_OVERHEAD, ResultCache, cache_key
from twinning_kg.web.views.sparql import answer

JSON = "application/sparql-results+json"


def ask(server: ServerProcess, query: str, accept: str = JSON, **headers: str) -> httpx.Response:
    """GET /sparql; `If_None_Match="..."` sends If-None-Match."""
    sent = {"Accept": accept, **{name.replace("_", "-"): value for name, value in headers.items()}}
    return httpx.get(server.url + "/sparql", params={"query": query}, headers=sent, timeout=30)


def test_miss_then_hit_with_one_etag_and_304(server: ServerProcess) -> None:
    query = "SELECT ?s WHERE { ?s a ?t } ORDER BY ?s LIMIT 2 # cache: miss then hit"
    first, second = ask(server, query), ask(server, query)
    assert first.status_code == second.status_code == 200
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert first.content == second.content
    assert first.headers["etag"] == second.headers["etag"]
    assert "Accept" in second.headers["vary"]
    assert second.headers["content-security-policy"] and second.headers["x-content-type-options"] == "nosniff"
    same = ask(server, query, If_None_Match=first.headers["etag"])
    assert same.status_code == 304 and same.content == b""
    assert same.headers["etag"] == first.headers["etag"]
    assert ask(server, query, If_None_Match='"another"').status_code == 200
    # the same answer under surrounding whitespace, and asked for by ?format=
    assert ask(server, f"\n  {query}  \n").headers["x-cache"] == "hit"
    by_key = httpx.get(server.url + "/sparql", params={"query": query, "format": "json"}, timeout=30)
    assert by_key.headers["x-cache"] == "hit" and by_key.headers["etag"] == first.headers["etag"]


def test_etag_differs_across_formats_queries_and_datasets(server: ServerProcess) -> None:
    query = "SELECT ?s WHERE { ?s a ?t } ORDER BY ?s LIMIT 3 # cache: validators"
    json_tag = ask(server, query).headers["etag"]
    csv = ask(server, query, "text/csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["x-cache"] == "miss"  # another format, another entry
    assert csv.headers["etag"] != json_tag
    assert ask(server, query.replace("LIMIT 3", "LIMIT 4")).headers["etag"] != json_tag
    with_dataset = httpx.get(
        server.url + "/sparql",
        params={"query": query, "default-graph-uri": "https://w3id.org/twinning-kg/graph/nothing"},
        headers={"Accept": JSON},
        timeout=30,
    )
    assert with_dataset.headers["x-cache"] == "miss" and with_dataset.headers["etag"] != json_tag
    # a validator of one representation does not answer for another
    assert ask(server, query, "text/csv", If_None_Match=json_tag).status_code == 200


def test_errors_are_never_cached(server: ServerProcess) -> None:
    broken = "SELECT ?s WHERE { ?s ?p # cache: syntax error"
    for _ in range(2):
        response = ask(server, broken)
        assert response.status_code == 400
        assert "x-cache" not in response.headers and "etag" not in response.headers
    construct = "CONSTRUCT WHERE { ?s ?p ?o } LIMIT 1 # cache: 406"
    for _ in range(2):
        assert ask(server, construct, JSON).status_code == 406  # refused, not cached as a miss


def test_row_cap_answers_are_never_cached(tmp_path: Path, site: Path) -> None:
    capped = serve(site, tmp_path, "--max-rows", "2")
    try:
        query = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 5"
        for _ in range(2):
            response = ask(capped, query)
            assert response.status_code == 422 and "x-cache" not in response.headers
        fits = "SELECT ?s WHERE { ?s ?p ?o } LIMIT 2"
        assert [ask(capped, fits).headers["x-cache"] for _ in range(2)] == ["miss", "hit"]
    finally:
        capped.stop()


class _Engine:
    """An engine answering from a script: results or errors, counting calls."""

    def __init__(self, *outcomes: QueryResult | QueryError) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    async def execute(self, request: QueryRequest) -> QueryResult:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, QueryError):
            raise outcome
        return outcome


def _ctx(site: Path, engine: _Engine, cache_bytes: int = 1 << 20) -> AppContext:
    release = Release.open(site)
    return AppContext(
        settings=Settings(base_iri=release.base_iri),
        release=release,
        engine=engine,  # type: ignore[arg-type]
        results=ResultCache(cache_bytes),
    )


def test_time_limits_and_federated_answers_are_not_kept(site: Path) -> None:
    timed_out = _Engine(QueryError(422, "the query took longer than 30 s"))
    ctx = _ctx(site, timed_out)
    request = QueryRequest("SELECT * { ?s ?p ?o }", accept=JSON)
    for _ in range(2):
        done = asyncio.run(answer(ctx, request))
        assert done.status == 422 and done.cache is None
    assert timed_out.calls == 2 and len(ctx.results) == 0
    federated = QueryResult("SELECT", JSON, b"{}", headers={"Cache-Control": "no-store"})
    engine = _Engine(federated)
    ctx = _ctx(site, engine)
    for _ in range(2):
        done = asyncio.run(answer(ctx, request))
        assert done.cache == "miss" and done.etag is None and done.headers()["Cache-Control"] == "no-store"
    assert engine.calls == 2 and len(ctx.results) == 0


def test_an_answer_in_a_fallback_format_is_not_kept(site: Path) -> None:
    # XML asked for, JSON written (XML cannot carry the result): depends on all of Accept
    engine = _Engine(QueryResult("SELECT", JSON, b"{}"))
    ctx = _ctx(site, engine)
    request = QueryRequest("SELECT * { ?s ?p ?o }", accept="application/sparql-results+xml, */*;q=0.1")
    for _ in range(2):
        assert asyncio.run(answer(ctx, request)).cache == "miss"
    assert engine.calls == 2


def test_the_bound_is_respected_least_recently_used_first() -> None:
    cache = ResultCache(max_bytes=64 * 1024)
    cache.for_release("v1")
    body = b"x" * 4000
    keys = [cache_key(f"SELECT * {{ ?s ?p {n} }}", (), ()) for n in range(100)]
    for key in keys:
        cache.put("v1", key, JSON, "SELECT", JSON, body)
        assert cache.size <= cache.max_bytes
        cache.get(keys[0], JSON)  # keep the first one in use
    assert 0 < len(cache) < 100
    kept = [k for k in keys if k in {entry[0] for entry in cache._entries}]
    assert cache.size == sum(len(body) + len(k[0]) + len(JSON) + ENTRY_OVERHEAD for k in kept)
    assert cache.get(keys[0], JSON) is not None and cache.get(keys[1], JSON) is None
    cache.put("v1", cache_key("SELECT * { ?big ?p ?o }", (), ()), JSON, "SELECT", JSON, b"y" * 9000)
    assert cache.get(cache_key("SELECT * { ?big ?p ?o }", (), ()), JSON) is None  # over an eighth
    off = ResultCache(max_bytes=0)
    off.for_release("v1")
    off.put("v1", keys[0], JSON, "SELECT", JSON, body)
    assert len(off) == 0 and off.get(keys[0], JSON) is None


def test_the_gzip_form_is_made_once_and_counted_while_kept() -> None:
    cache = ResultCache(max_bytes=64 * 1024)
    cache.for_release("v1")
    bodies = {n: (b'{"n": %d, "rows": [' % n) + b'{"x": 1},' * 600 + b"]}" for n in range(40)}
    entries = {}
    for n, body in bodies.items():
        entries[n] = cache.put("v1", cache_key(f"ASK {{ {n} }}", (), ()), JSON, "ASK", JSON, body)
        first = gzip_body(body)
        cache.keep_gzip(entries[n], first)
        cache.keep_gzip(entries[n], gzip_body(body))  # a second form is not counted again
        assert entries[n].gzip_form is first and gzip.decompress(first) == body
        assert cache.size <= cache.max_bytes
        assert cache.size == sum(e.size for e in cache._entries.values())  # gzip forms counted
    kept = list(cache._entries.values())
    assert 0 < len(kept) < 40 and all(e.gzip_form is not None for e in kept)
    evicted = entries[0]
    assert not evicted.kept and evicted.gzip_form  # still answers; counts for nothing
    assert cache.size == sum(e.size for e in cache._entries.values())
    last = entries[39]
    cache.for_release("v2")  # an answer in flight across a switch adds nothing to the new cache
    last.gzip_form = None
    cache.keep_gzip(last, gzip_body(last.body))
    assert cache.size == 0 and len(cache) == 0


def test_another_release_empties_the_cache_and_late_answers_are_dropped() -> None:
    cache = ResultCache()
    cache.for_release("v1")
    key = cache_key("ASK {}", (), ())
    cache.put("v1", key, JSON, "ASK", JSON, b"true")
    assert cache.get(key, JSON) is not None
    cache.for_release("v2")
    assert cache.get(key, JSON) is None and cache.size == 0
    cache.put("v1", key, JSON, "ASK", JSON, b"true")  # computed on v1, arriving after the switch
    assert cache.get(key, JSON) is None


def test_a_release_switch_never_serves_the_old_answer(tmp_path: Path) -> None:
    out = tmp_path / "site"
    served = publish(out, "old")
    server = serve(out, tmp_path)
    try:
        first, cached = ask(server, LABEL_QUERY), ask(server, LABEL_QUERY)
        assert cached.headers["x-cache"] == "hit" and '"old"' in cached.text
        publish(out, "new")
        shutil.rmtree(served)
        assert wait_for(lambda: _label_or_none(server) == "new")
        after = ask(server, LABEL_QUERY)
        assert '"new"' in after.text and after.headers["etag"] != first.headers["etag"]
        assert ask(server, LABEL_QUERY, If_None_Match=first.headers["etag"]).status_code == 200
    finally:
        server.stop()
