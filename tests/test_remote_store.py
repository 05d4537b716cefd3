"""Issue 4, "Beyond one machine": publish to a real Oxigraph server, serve from it.

`oxigraph serve` (the PyPI package's binary, in the venv's bin) is started on a free
port with an empty location; `twinning-kg publish --to …/store` loads the world
release through the SPARQL 1.1 Graph Store Protocol; `twinning-kg serve --store
…/query` must then answer like the local release, and keep refusing what the guard
refuses.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pyoxigraph as ox
import pytest

from conftest import ServerProcess, free_port, run_cli
from test_import import MOST_TWINNED, ONE_WAY, WEIMAR_PARTNERS, select
from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryError, QueryRequest
from twinning_kg.query.remote_engine import RemoteEngine

OXIGRAPH = Path(sys.executable).parent / "oxigraph"
JSON = "application/sparql-results+json"
TW = f"{Settings().base_iri}ontology#"
SLOW = f"SELECT (COUNT(*) AS ?n) WHERE {{ ?p <{TW}partner> ?x . ?q <{TW}partner> ?x . ?q <{TW}partner> ?y }}"


class Oxigraph:
    """`oxigraph serve --location DIR --bind 127.0.0.1:PORT`, stopped at the end."""

    def __init__(self, location: Path) -> None:
        assert OXIGRAPH.is_file(), f"{OXIGRAPH} missing: install the test extra (pip install -e '.[test]')"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (location.parent / f"oxigraph-{self.port}.log").open("w")
        self.proc = subprocess.Popen(
            [str(OXIGRAPH), "serve", "--location", str(location), "--bind", f"127.0.0.1:{self.port}"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "oxigraph serve exited"
            try:
                httpx.get(f"{self.url}/query", params={"query": "ASK {}"}, timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("oxigraph serve did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def counts(self) -> dict[str, int]:
        response = httpx.post(
            f"{self.url}/query",
            data={"query": "SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g"},
            headers={"Accept": JSON},
            timeout=60,
        )
        return {b["g"]["value"]: int(b["n"]["value"]) for b in response.json()["results"]["bindings"]}


@pytest.fixture(scope="module")
def oxigraph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oxigraph]:
    server = Oxigraph(tmp_path_factory.mktemp("oxigraph") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def published(oxigraph: Oxigraph, world: Path) -> Oxigraph:
    proc = run_cli("publish", "--graph", str(world), "--to", f"{oxigraph.url}/store")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return oxigraph


@pytest.fixture(scope="module")
def remote_server(
    published: Oxigraph, world: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = ServerProcess(["--graph", str(world), "--store", f"{published.url}/query"])
    server.start(tmp_path_factory.mktemp("remote-logs"))
    yield server
    server.stop()


def ask(server: ServerProcess, query: str) -> httpx.Response:
    return httpx.get(f"{server.url}/sparql", params={"query": query}, headers={"Accept": JSON}, timeout=60)


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return [{k: v["value"] for k, v in b.items()} for b in response.json()["results"]["bindings"]]


def test_publish_puts_every_graph_of_the_release(published: Oxigraph, world: Path) -> None:
    manifest = json.loads((world / "manifest.json").read_text())
    assert published.counts() == manifest["graphs"]


def test_publishing_again_replaces_rather_than_adds(published: Oxigraph, world: Path) -> None:
    before = published.counts()
    proc = run_cli("publish", "--graph", str(world), "--to", f"{published.url}/store")
    assert proc.returncode == 0, proc.stderr
    assert published.counts() == before


def test_remote_store_answers_the_same_queries(remote_server: ServerProcess, world: Path) -> None:
    local = ox.Store.read_only(str(world / "store"))
    for query in (WEIMAR_PARTNERS, MOST_TWINNED, ONE_WAY):
        assert rows(ask(remote_server, query)) == select(local, query), query
    assert [r["label"] for r in rows(ask(remote_server, WEIMAR_PARTNERS))] == [
        "Blois",
        "Hämeenlinna",
        "Siena",
        "Trier",
        "Zamość",
    ]


def test_remote_store_keeps_named_graphs_and_describe(remote_server: ServerProcess) -> None:
    graphs = rows(ask(remote_server, "SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g"))
    assert f"{Settings().base_iri}graph/wikidata-p190-2016" in {r["g"] for r in graphs}
    response = httpx.get(
        f"{remote_server.url}/sparql",
        params={"query": f"DESCRIBE <{Settings().base_iri}id/place/Q3955>"},
        headers={"Accept": "application/n-triples"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    triples = list(ox.parse(response.content, format=ox.RdfFormat.N_TRIPLES))
    assert any(t.object == ox.Literal("Weimar") for t in triples)


def test_linked_data_pages_come_from_the_remote_store(remote_server: ServerProcess) -> None:
    """The front end's other pages run their SPARQL through the same engine: here the remote one."""
    response = httpx.get(f"{remote_server.url}/id/place/Q3955", headers={"Accept": "text/turtle"}, timeout=60)
    assert response.status_code == 303
    document = httpx.get(
        urljoin(f"{remote_server.url}/", response.headers["location"]),
        headers={"Accept": "text/turtle"},
        timeout=60,
    )
    assert document.status_code == 200, document.text
    triples = list(ox.parse(document.content, format=ox.RdfFormat.TURTLE, base_iri=remote_server.url))
    assert any(t.object == ox.Literal("Weimar") for t in triples)
    page = httpx.get(f"{remote_server.url}/doc/place/Q3955", headers={"Accept": "text/html"}, timeout=60)
    assert page.status_code == 200 and "Weimar" in page.text


def test_the_guard_still_refuses_service_and_updates(
    remote_server: ServerProcess, published: Oxigraph
) -> None:
    response = ask(remote_server, "SELECT * WHERE { SERVICE <http://127.0.0.1:9/sparql> { ?s ?p ?o } }")
    assert response.status_code == 403 and "not allowed" in response.text
    response = ask(remote_server, f"SELECT * WHERE {{ SERVICE <{published.url}/query> {{ ?s ?p ?o }} }}")
    assert response.status_code == 403  # not even the store itself may be reached through SERVICE
    before = published.counts()
    response = httpx.post(
        f"{remote_server.url}/sparql", data={"update": "INSERT DATA { <urn:a> <urn:b> <urn:c> }"}, timeout=30
    )
    assert response.status_code in (400, 403, 405)
    response = ask(remote_server, "INSERT DATA { <urn:a> <urn:b> <urn:c> }")
    assert response.status_code == 403
    assert published.counts() == before


def test_remote_errors_are_messages(remote_server: ServerProcess) -> None:
    response = ask(remote_server, "SELECT * WHERE { ?s ?p }")
    assert response.status_code == 400 and "Traceback" not in response.text


def test_remote_engine_limits(published: Oxigraph) -> None:
    """Row cap and an unreachable store, on the engine itself (the limits the server applies)."""
    settings = Settings(max_rows=5, query_timeout=10)

    async def run() -> list[QueryError]:
        errors = []
        engine = RemoteEngine(f"{published.url}/query", settings)
        try:
            for query in ("SELECT * WHERE { ?s ?p ?o }", "CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }"):
                try:
                    await engine.execute(QueryRequest(query))
                except QueryError as exc:
                    errors.append(exc)
            result = await engine.execute(
                QueryRequest("SELECT * WHERE { ?s ?p ?o } LIMIT 5", accept="text/csv")
            )
            assert result.media_type.startswith("text/csv") and result.body.count(b"\n") == 6
        finally:
            await engine.close()
        hasty = RemoteEngine(f"{published.url}/query", Settings(query_timeout=0.3))
        try:  # ~2 s of joins on the world graph, against a 0.3 s limit
            await hasty.execute(QueryRequest(SLOW))
        except QueryError as exc:
            errors.append(exc)
        finally:
            await hasty.close()
        dead = RemoteEngine(f"http://127.0.0.1:{free_port()}/query", settings)
        try:
            await dead.execute(QueryRequest("ASK {}"))
        except QueryError as exc:
            errors.append(exc)
        finally:
            await dead.close()
        return errors

    errors = asyncio.run(run())
    assert [e.status for e in errors] == [422, 422, 422, 502]
    assert "more than 5 rows" in errors[0].message and "more than 5 triples" in errors[1].message
    assert "time limit of 0.3 s" in errors[2].message


def test_publish_to_nowhere_is_a_message(world: Path) -> None:
    proc = run_cli(
        "publish",
        "--graph",
        str(world),
        "--to",
        f"http://127.0.0.1:{free_port()}/store",
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") or "\nerror:" in proc.stderr
    assert "Traceback" not in proc.stderr
