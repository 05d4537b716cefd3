"""SERVICE against the real server: the guard refuses, and below it the workers cannot reach
anything but the egress proxy, which calls only allow-listed URLs.

A `Listener` stands for everything a query must never reach (it must receive nothing);
a `StubEndpoint` on the allow-list stands for Wikidata (no test reaches the internet).
The egress layer is tested on its own too: workers whose guard is blinded (it sees no
SERVICE) run the whole attack battery, and still nothing arrives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess
from sparql_support import (
    Listener,
    StubEndpoint,
    escape_differentials,
    serve,
    spellings,
    unguarded_worker_main,
    unisolated_worker_main,
)
from twinning_kg.config import DEFAULT_BASE_IRI, Settings
from twinning_kg.query.egress import EgressProxy
from twinning_kg.query.engine import QueryError, QueryRequest
from twinning_kg.query.sandbox import relay_url
from twinning_kg.query.worker_pool import WorkerPoolEngine
from twinning_kg.web.views.sparql import load_examples

JSON = "application/sparql-results+json"
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    forbidden = Listener()
    yield forbidden
    forbidden.close()


@pytest.fixture(scope="module")
def stub() -> Iterator[StubEndpoint]:
    endpoint = StubEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture(scope="module")
def federated(
    site: Path, stub: StubEndpoint, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = serve(
        site,
        tmp_path_factory.mktemp("logs"),
        "--timeout",
        str(TIMEOUT),
        "--workers",
        "2",
        "--service-allow",
        stub.url,
        "--service-allow",
        stub.base + "/redirect",
        "--service-allow",
        stub.base + "/wikidata",
    )
    yield server
    server.stop()


def query(server: ServerProcess, text: str, accept: str = JSON) -> httpx.Response:
    return httpx.post(server.url + "/sparql", data={"query": text}, headers={"Accept": accept}, timeout=60)


def settle() -> None:
    """Give any connection that was (wrongly) made time to be recorded."""
    time.sleep(0.5)


# ------------------------------------------------------------------ the guard, over HTTP


def test_every_spelling_of_a_forbidden_service_is_refused_and_nothing_arrives(
    federated: ServerProcess, listener: Listener, stub: StubEndpoint
) -> None:
    before = len(stub.requests)
    for text in spellings(listener.url):
        response = query(federated, text)
        assert response.status_code in (400, 403), (text, response.status_code, response.text)
    settle()
    assert listener.received == []
    assert len(stub.requests) == before


def test_escape_differentials_run_as_the_guard_read_them(
    federated: ServerProcess, listener: Listener
) -> None:
    """Read as SPARQL says (\\u escapes first), the SERVICE is inside a string: the query
    runs, and pyoxigraph, given that same text, calls nothing."""
    for text in escape_differentials(listener.url):
        response = query(federated, text)
        assert response.status_code == 200, response.text
    settle()
    assert listener.received == []


def test_the_allowed_service_is_called_through_the_proxy(
    federated: ServerProcess, stub: StubEndpoint
) -> None:
    before = len(stub.requests)
    response = query(federated, f"SELECT ?x WHERE {{ SERVICE <{stub.url}> {{ ?x ?p ?o }} }}")
    assert response.status_code == 200, response.text
    assert response.json()["results"]["bindings"] == [{"x": {"type": "literal", "value": "from-stub"}}]
    assert response.headers["cache-control"] == "no-store"  # not tied to our release
    method, path, headers, body = stub.requests[before]
    assert (method, path) == ("POST", "/sparql")
    assert headers["content-type"] == "application/sparql-query"
    assert headers["user-agent"].startswith("twinning-kg")
    assert b"?x ?p ?o" in body


def test_two_nested_services_to_the_allowed_endpoint_work(
    federated: ServerProcess, stub: StubEndpoint
) -> None:
    before = len(stub.requests)
    text = f"SELECT ?x WHERE {{ SERVICE <{stub.url}> {{ SERVICE <{stub.url}> {{ ?x ?p ?o }} }} }}"
    response = query(federated, text)
    assert response.status_code == 200, response.text
    assert len(stub.requests) == before + 1  # the outer clause; the inner one is the stub's to run
    body = stub.requests[before][3].decode()
    assert f"SERVICE <{stub.url}>" in body  # the inner clause as written, not our relay's address
    assert relay_url(0) not in body


def test_service_inside_60_nested_optionals_works(federated: ServerProcess, stub: StubEndpoint) -> None:
    clause = f"SERVICE <{stub.url}> {{ ?x ?p ?o }}"
    response = query(federated, "SELECT ?x WHERE { " + "OPTIONAL { " * 60 + clause + " }" * 60 + " }")
    assert response.status_code == 200, response.text
    assert "from-stub" in response.text


@pytest.mark.parametrize("order", ["allowed first", "forbidden first"])
def test_sibling_services_allowed_and_forbidden_call_neither(
    federated: ServerProcess, stub: StubEndpoint, listener: Listener, order: str
) -> None:
    clauses = [f"SERVICE <{stub.url}> {{ ?x ?p ?o }}", f"SERVICE <{listener.url}> {{ ?y ?q ?z }}"]
    if order == "forbidden first":
        clauses.reverse()
    before = len(stub.requests)
    response = query(federated, "SELECT * WHERE { " + " ".join(clauses) + " }")
    assert response.status_code == 403
    assert listener.url in response.text
    settle()
    assert len(stub.requests) == before and listener.received == []


def test_near_misses_of_the_allow_list_call_nothing(
    federated: ServerProcess, stub: StubEndpoint, listener: Listener
) -> None:
    near = [
        stub.url[:-1],  # prefix
        stub.url + "2",  # suffix
        stub.url + "/",  # trailing slash
        stub.url.replace("http://", "https://"),  # other scheme
        f"http://127.0.0.1:{listener.port}/sparql",  # other port
        f"http://localhost:{stub.port}/sparql",  # other spelling of the host
        stub.url + "?default-graph-uri=x",  # query string
        stub.base + "/SPARQL",
    ]
    before = len(stub.requests)
    for target in near:
        response = query(federated, f"SELECT * WHERE {{ SERVICE <{target}> {{ ?x ?p ?o }} }}")
        assert response.status_code == 403, (target, response.text)
    settle()
    assert len(stub.requests) == before and listener.received == []


def test_a_redirect_from_an_allowed_service_is_not_followed(
    federated: ServerProcess, stub: StubEndpoint, listener: Listener
) -> None:
    stub.redirect_to = listener.url
    response = query(federated, f"SELECT * WHERE {{ SERVICE <{stub.base}/redirect> {{ ?x ?p ?o }} }}")
    assert response.status_code == 424, response.text
    assert "redirect" in response.text and f"<{stub.base}/redirect>" in response.text
    settle()
    assert listener.received == []


@pytest.mark.parametrize(("delay", "passes"), [(TIMEOUT - 0.5, True), (TIMEOUT + 0.5, False)])
def test_a_query_ending_right_at_the_time_limit(
    federated: ServerProcess, stub: StubEndpoint, delay: float, passes: bool
) -> None:
    """The stub answers after `delay` s: just under the limit passes, just over is stopped
    at the limit (not when the service finally answers)."""
    started = time.monotonic()
    response = query(federated, f'SELECT ?x WHERE {{ SERVICE <{stub.url}> {{ ?x ?p "delay:{delay}" }} }}')
    elapsed = time.monotonic() - started
    if passes:
        assert response.status_code == 200, response.text
        assert delay <= elapsed < TIMEOUT
    else:
        assert response.status_code == 422, response.text
        assert "time limit of 3 s" in response.text
        assert TIMEOUT <= elapsed < delay + 0.5


def test_startup_says_how_workers_are_isolated(federated: ServerProcess) -> None:
    assert "workers: network namespace (loopback only); SERVICE only via the egress proxy" in federated.log()


# ------------------------------------------------------------------ the egress layer alone


class BlindGuardEngine(WorkerPoolEngine):
    """Workers whose guard sees no SERVICE: what a guard that misread every query would pass on."""

    worker_target = staticmethod(unguarded_worker_main)


def _run_blind(site: Path, settings: Settings, queries: list[str]) -> tuple[str, list[object]]:
    engine = BlindGuardEngine(site / "store", settings)

    async def run() -> list[object]:
        outcomes: list[object] = []
        for text in queries:
            try:
                outcomes.append(await engine.execute(QueryRequest(query=text, accept=JSON)))
            except QueryError as exc:
                outcomes.append(exc)
        return outcomes

    try:
        return engine.isolation, asyncio.run(run())
    finally:
        engine.shutdown()


@pytest.mark.parametrize("isolation", ["auto", "seccomp"])
def test_a_worker_whose_guard_misses_every_service_still_reaches_nothing(
    site: Path, listener: Listener, stub: StubEndpoint, isolation: str
) -> None:
    """The guard is switched off inside the workers; each query goes to pyoxigraph as sent.
    The listener (and the allow-listed stub, called directly instead of via the proxy)
    must receive nothing: the network namespace (or, without one, seccomp) stops it."""
    settings = Settings(
        service_allowlist=(stub.url,), query_timeout=10, workers=1, site_workers=0, worker_isolation=isolation
    )
    direct = [
        f"SELECT * WHERE {{ SERVICE <{stub.url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE <http://localhost:{listener.port}/sparql> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE <http://[::1]:{listener.port}/sparql> {{ ?s ?p ?o }} }}",
    ]
    before = len(stub.requests)
    level, outcomes = _run_blind(site, settings, spellings(listener.url) + direct)
    assert level == ("namespace" if isolation == "auto" else "seccomp")
    for outcome in outcomes:
        if isinstance(outcome, QueryError):
            assert outcome.status < 500, outcome.message
    failures = [o for o in outcomes if isinstance(o, QueryError)]
    assert failures, "the blinded workers refused nothing: the battery did not run"
    settle()
    assert listener.received == []
    assert len(stub.requests) == before


def test_control_pyoxigraph_alone_reaches_the_listener(site: Path, listener: Listener) -> None:
    """The control for the test above: on the same store, pyoxigraph in this process (no
    namespace, no seccomp) does reach the listener (test_query_guard's
    test_the_attack_battery_is_real does it for every spelling)."""
    import pyoxigraph as ox

    store = ox.Store.read_only(str(site / "store"))
    with pytest.raises(OSError):
        list(store.query(f"SELECT * WHERE {{ SERVICE <{listener.url}> {{ ?s ?p ?o }} }}"))
    settle()
    assert listener.received, "pyoxigraph itself did not call the listener: the test above proves nothing"
    listener.received.clear()


# ------------------------------------------------------------------ without a namespace: federation off


def test_without_a_namespace_federation_is_refused_and_said_at_startup(
    site: Path, stub: StubEndpoint, tmp_path: Path
) -> None:
    server = serve(site, tmp_path, "--isolation", "seccomp", "--service-allow", stub.url)
    try:
        before = len(stub.requests)
        response = query(server, f"SELECT * WHERE {{ SERVICE <{stub.url}> {{ ?x ?p ?o }} }}")
        assert response.status_code == 403
        assert "federated queries (SERVICE) are disabled on this server" in response.text
        assert query(server, "ASK {}").status_code == 200
        settle()
        assert len(stub.requests) == before
        log = server.log()
        assert "workers: seccomp filter (no network sockets); federation off" in log
        assert "federated queries are disabled" in log
    finally:
        server.stop()


# ------------------------------------------------------------------ the proxy on its own


@pytest.fixture()
def proxy(stub: StubEndpoint) -> Iterator[EgressProxy]:
    allowlist = (stub.url, stub.base + "/big")
    egress = EgressProxy(allowlist, timeout=5, max_bytes=50_000, max_request_bytes=10_000)
    yield egress
    egress.close()


def _via(proxy: EgressProxy) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(uds=proxy.path), base_url="http://relay", timeout=10)


def test_the_proxy_calls_only_listed_urls_with_only_what_a_query_needs(
    proxy: EgressProxy, stub: StubEndpoint
) -> None:
    before = len(stub.requests)
    with _via(proxy) as client:
        ok = client.post(
            "/0?x=1",
            content=b"SELECT * WHERE { ?x ?p ?o }",
            headers={
                "Content-Type": "application/sparql-query",
                "Accept": JSON,
                "Cookie": "secret=1",
                "Authorization": "Bearer x",
                "X-Forwarded-For": "10.0.0.1",
            },
        )
        assert ok.status_code == 200 and "from-stub" in ok.text
        method, path, headers, _body = stub.requests[before]
        assert (method, path) == ("POST", "/sparql?x=1")
        assert not {"cookie", "authorization", "x-forwarded-for"} & set(headers)
        assert client.post("/2", content=b"").status_code == 404  # not on the list
        assert client.post("/../sparql", content=b"").status_code == 404
        assert client.post("http://127.0.0.1:9/x", content=b"").status_code == 404
        assert client.request("PUT", "/0", content=b"").status_code == 405
        assert client.post("/0", content=b"#" * 20_000).status_code == 413
        big = client.post("/1", content=b"SELECT * {}")  # 10,000 rows: more than 50,000 bytes
        assert big.status_code == 502 and "exceeds 50000 bytes" in big.text
    assert len(stub.requests) == before + 2


class UnisolatedEngine(WorkerPoolEngine):
    """Workers on a host that allows neither a namespace nor seccomp (simulated in the worker)."""

    worker_target = staticmethod(unisolated_worker_main)


def test_without_any_isolation_federation_is_refused_and_an_error_logged(
    site: Path, stub: StubEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(service_allowlist=(stub.url,), query_timeout=10, workers=1, site_workers=0)
    with caplog.at_level(logging.ERROR, logger="twinning_kg.engine"):
        engine = UnisolatedEngine(site / "store", settings)
    try:
        assert (engine.isolation, engine.federation) == ("none", False)
        assert engine.describe_isolation() == "NOT isolated; federation off"
        assert "NOT isolated from the network" in caplog.text
        before = len(stub.requests)

        async def federated() -> QueryError | None:
            try:
                await engine.execute(QueryRequest(f"SELECT * {{ SERVICE <{stub.url}> {{ ?s ?p ?o }} }}"))
            except QueryError as exc:
                return exc
            return None

        refused = asyncio.run(federated())
        assert refused is not None and refused.status == 403
        assert "federated queries (SERVICE) are disabled" in refused.message
        assert len(stub.requests) == before
    finally:
        engine.shutdown()


def test_isolation_namespace_refuses_to_start_without_one(site: Path) -> None:
    settings = Settings(workers=1, site_workers=0, worker_isolation="namespace")
    with pytest.raises(RuntimeError, match="cannot get a network namespace"):
        UnisolatedEngine(site / "store", settings)


def test_the_federated_example_runs_against_a_stand_in_for_wikidata(
    federated: ServerProcess, stub: StubEndpoint
) -> None:
    """The YASGUI example that asks Wikidata for populations, run end to end without the
    internet: the stub answers populations for two of Kassel's partners' items and for one
    item that is nobody's partner; the join keeps exactly the partners, largest first."""
    example = load_examples(DEFAULT_BASE_IRI)[FEDERATED]
    items = select(federated, PARTNER_ITEMS)
    assert len(items) >= 2
    wikidata = "https://query.wikidata.org/sparql"
    assert f"SERVICE <{wikidata}>" in example
    population = {items[0]: 1000, items[1]: 5000, "http://www.wikidata.org/entity/Q1": 7}
    stub.wikidata = {
        "head": {"vars": ["item", "population"]},
        "results": {
            "bindings": [
                {
                    "item": {"type": "uri", "value": item},
                    "population": {"type": "literal", "value": str(n), "datatype": XSD_DECIMAL},
                }
                for item, n in population.items()
            ]
        },
    }
    before = len(stub.requests)
    response = query(federated, example.replace(wikidata, stub.base + "/wikidata"))
    assert response.status_code == 200, response.text
    rows = response.json()["results"]["bindings"]
    assert [(r["item"]["value"], int(r["population"]["value"])) for r in rows] == [
        (items[1], 5000),
        (items[0], 1000),
    ]
    assert all(r["label"]["xml:lang"] == "en" for r in rows)
    assert any(path == "/wikidata" for _m, path, _h, _b in stub.requests[before:])


def select(server: ServerProcess, text: str) -> list[str]:
    response = query(server, text)
    assert response.status_code == 200, response.text
    return [row["item"]["value"] for row in response.json()["results"]["bindings"]]


FEDERATED = "Federated: population of Kassel's partners, from Wikidata (needs internet)"
XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"
PARTNER_ITEMS = f"""PREFIX tw: <{DEFAULT_BASE_IRI}ontology#>
PREFIX owl: <http://www.w3.org/2002/07/owl#>
SELECT DISTINCT ?item WHERE {{
  ?p a tw:Partnership ; tw:partner <{DEFAULT_BASE_IRI}id/place/kassel> , ?partner .
  FILTER(?partner != <{DEFAULT_BASE_IRI}id/place/kassel>)
  ?partner owl:sameAs ?item FILTER(STRSTARTS(STR(?item), "http://www.wikidata.org/entity/"))
}} ORDER BY ?item"""
