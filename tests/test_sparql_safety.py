"""Attacks and limits, over HTTP against the real server (`serve --timeout 2 --max-rows 100`).

- FROM / FROM NAMED / GRAPH / default-graph-uri naming a local file never read it;
- SERVICE to a listener that is not allow-listed: refused, the listener receives nothing;
  an allow-listed SERVICE passes the guard (the listener is called);
- LOAD / INSERT refused, data unchanged;
- a cross join times out with a clear error while `ASK {}` keeps answering, and the
  worker that ran it is gone (killed and replaced);
- row cap, request size limits, CORS, gzip, ETag/Last-Modified with 304.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import ServerProcess
from sparql_support import serve, sparql_workers

SECRET = "s3cr3t-do-not-leak-4711"
CROSS_JOIN = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
JSON = "application/sparql-results+json"


class Listener:
    """A plain TCP listener on 127.0.0.1 that records every connection and its first bytes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/sparql"
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    self.received.append(conn.recv(65536) or b"<connected>")
                except OSError:
                    self.received.append(b"<connected>")
                # Not a SPARQL service: answer garbage so the caller fails fast.
                conn.sendall(b"HTTP/1.1 500 Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture(scope="module")
def listeners() -> Iterator[tuple[Listener, Listener]]:
    forbidden, allowed = Listener(), Listener()
    yield forbidden, allowed
    forbidden.close()
    allowed.close()


@pytest.fixture(scope="module")
def guarded(
    site: Path, listeners: tuple[Listener, Listener], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    _forbidden, allowed = listeners
    server = serve(
        site,
        tmp_path_factory.mktemp("logs"),
        "--timeout",
        "2",
        "--max-rows",
        "100",
        "--workers",
        "2",
        "--max-request-bytes",
        "20000",
        "--worker-memory",
        "400",
        "--service-allow",
        allowed.url,
    )
    yield server
    server.stop()


def query(server: ServerProcess, text: str, accept: str = JSON, **params: str) -> httpx.Response:
    return httpx.post(
        server.url + "/sparql", data={"query": text, **params}, headers={"Accept": accept}, timeout=60
    )


def count_rows(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return len(response.json()["results"]["bindings"])


# ------------------------------------------------------------------ no local files, no fetches


@pytest.fixture(scope="module")
def secret_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "secret.ttl"
    path.write_text(f'<urn:x> <urn:secret> "{SECRET}" .\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "form",
    [
        "SELECT * FROM <{iri}> WHERE {{ ?s ?p ?o }}",
        "SELECT * FROM NAMED <{iri}> WHERE {{ GRAPH ?g {{ ?s ?p ?o }} }}",
        "SELECT * WHERE {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}",
        "CONSTRUCT {{ ?s ?p ?o }} FROM <{iri}> WHERE {{ ?s ?p ?o }}",
    ],
)
def test_from_a_local_file_reads_nothing(guarded: ServerProcess, secret_file: Path, form: str) -> None:
    response = query(guarded, form.format(iri=secret_file.as_uri()), accept="*/*")
    assert response.status_code == 200, response.text
    assert SECRET not in response.text
    assert "urn:secret" not in response.text


def test_protocol_dataset_naming_a_local_file_reads_nothing(
    guarded: ServerProcess, secret_file: Path
) -> None:
    response = httpx.get(
        guarded.url + "/sparql",
        params=[
            ("query", "SELECT * WHERE { { ?s ?p ?o } UNION { GRAPH ?g { ?s ?p ?o } } }"),
            ("default-graph-uri", secret_file.as_uri()),
            ("named-graph-uri", secret_file.as_uri()),
        ],
        headers={"Accept": JSON},
        timeout=30,
    )
    assert count_rows(response) == 0
    assert SECRET not in response.text


def test_service_to_a_listener_not_allowed_is_refused_and_receives_nothing(
    guarded: ServerProcess, listeners: tuple[Listener, Listener]
) -> None:
    forbidden, _allowed = listeners
    attempts = [
        f"SELECT * WHERE {{ SERVICE <{forbidden.url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE SILENT <{forbidden.url}> {{ ?s ?p ?o }} }}",
        f"PREFIX x: <http://127.0.0.1:{forbidden.port}/> SELECT * {{ SERVICE x:sparql {{ ?s ?p ?o }} }}",
        f"BASE <http://127.0.0.1:{forbidden.port}/> SELECT * WHERE {{ SERVICE <sparql> {{ ?s ?p ?o }} }}",
        # \u escapes are decoded before parsing (SPARQL 1.1 §19.2): still a SERVICE
        f"SELECT * WHERE {{ \\u0053ERVICE <{forbidden.url}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ # comment\n sErViCe <{forbidden.url}> {{ ?s ?p ?o }} }}",
        "SELECT * WHERE { SERVICE ?endpoint { ?s ?p ?o } }",
        "SELECT * WHERE { SERVICE <file:///etc/passwd> { ?s ?p ?o } }",
    ]
    for text in attempts:
        response = query(guarded, text)
        assert response.status_code == 403, (text, response.status_code, response.text)
        assert "SERVICE" in response.text
    time.sleep(0.5)
    assert forbidden.received == []


def test_allowed_service_passes_the_guard(
    guarded: ServerProcess, listeners: tuple[Listener, Listener]
) -> None:
    _forbidden, allowed = listeners
    response = query(guarded, f"SELECT * WHERE {{ SERVICE <{allowed.url}> {{ ?s ?p ?o }} }}")
    # The listener is no SPARQL service: a clear 4xx that names it, never a 5xx.
    assert response.status_code == 424, response.text
    assert allowed.url in response.text
    deadline = time.monotonic() + 5
    while not allowed.received and time.monotonic() < deadline:
        time.sleep(0.1)
    assert allowed.received, "the allowed service was never called"
    assert b"/sparql" in allowed.received[0]


@pytest.mark.parametrize(
    "update",
    [
        "LOAD <file:///etc/passwd>",
        "INSERT DATA { <urn:a> <urn:b> <urn:c> }",
        "PREFIX x: <urn:x#> DELETE WHERE { ?s ?p ?o }",
        "DROP ALL",
    ],
)
def test_updates_are_refused(guarded: ServerProcess, update: str) -> None:
    before = count_rows(query(guarded, "SELECT ?s WHERE { ?s ?p ?o } LIMIT 50"))
    as_query = query(guarded, update)
    as_update = httpx.post(guarded.url + "/sparql", data={"update": update}, timeout=30)
    direct = httpx.post(
        guarded.url + "/sparql",
        content=update.encode(),
        headers={"Content-Type": "application/sparql-update"},
        timeout=30,
    )
    for response in (as_query, as_update, direct):
        assert response.status_code == 403, response.text
        assert "read-only" in response.text
    assert count_rows(query(guarded, "SELECT ?s WHERE { ?s ?p ?o } LIMIT 50")) == before
    assert count_rows(query(guarded, "SELECT * WHERE { <urn:a> ?p ?o }")) == 0


# ------------------------------------------------------------------ time limit, row cap


def test_cross_join_times_out_while_ask_keeps_answering(guarded: ServerProcess) -> None:
    before = sparql_workers(guarded.proc.pid)
    assert len(before) == 2
    outcome: dict[str, object] = {}

    def runaway() -> None:
        started = time.monotonic()
        outcome["response"] = query(guarded, CROSS_JOIN)
        outcome["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=runaway)
    thread.start()
    time.sleep(0.5)
    for _ in range(5):  # the other worker answers while the runaway query runs
        started = time.monotonic()
        response = httpx.get(guarded.url + "/sparql", params={"query": "ASK {}"}, timeout=10)
        assert response.status_code == 200
        assert time.monotonic() - started < 1.5  # generous: typically milliseconds
    thread.join(30)
    response = outcome["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 422
    assert "time limit" in response.text
    assert outcome["seconds"] < 15  # limit 2 s; generous bound
    # The worker that ran it is gone (killed, not left eating a core) and was replaced.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        after = sparql_workers(guarded.proc.pid)
        if len(after) == 2 and after != before:
            break
        time.sleep(0.2)
    killed = before - after
    assert len(killed) == 1, (before, after)
    pid = killed.pop()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), Path(f"/proc/{pid}/stat").read_text()
    assert len(after) == 2


def test_busy_workers_do_not_make_quick_queries_wait(site: Path, tmp_path: Path) -> None:
    """One worker, busy with a runaway (limit 20 s): the pool grows and ASK still answers."""
    server = serve(site, tmp_path, "--workers", "1", "--timeout", "20")
    try:
        assert len(sparql_workers(server.proc.pid)) == 1
        thread = threading.Thread(target=query, args=(server, CROSS_JOIN), daemon=True)
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        response = httpx.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=30)
        assert response.status_code == 200
        assert time.monotonic() - started < 8  # generous: a worker start, not the 20 s limit
        assert len(sparql_workers(server.proc.pid)) == 2
    finally:
        server.stop()


def test_a_query_needing_too_much_memory_is_stopped(guarded: ServerProcess) -> None:
    """`--worker-memory 400`: a sort of millions of rows aborts its worker, not the machine."""
    before = sparql_workers(guarded.proc.pid)
    response = query(guarded, "SELECT * { ?a ?b ?c . ?d ?e ?f } ORDER BY ?a ?f LIMIT 1")
    assert response.status_code == 422, response.text
    assert "memory" in response.text
    assert query(guarded, "ASK {}").status_code == 200
    deadline = time.monotonic() + 20
    while len(sparql_workers(guarded.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = sparql_workers(guarded.proc.pid)
    assert len(after) == 2 and after != before


def test_row_cap(guarded: ServerProcess) -> None:
    response = query(guarded, "SELECT * WHERE { ?s ?p ?o }")
    assert response.status_code == 422
    assert "more than 100 rows" in response.text
    assert count_rows(query(guarded, "SELECT * WHERE { ?s ?p ?o } LIMIT 100")) == 100
    graph = query(guarded, "CONSTRUCT WHERE { ?s ?p ?o }", accept="text/turtle")
    assert graph.status_code == 422
    assert "more than 100 triples" in graph.text


# ------------------------------------------------------------------ HTTP limits and caching


def test_request_too_large(guarded: ServerProcess) -> None:
    padding = "#" + "x" * 30_000 + "\n"
    response = query(guarded, padding + "ASK {}")
    assert response.status_code == 413
    direct = httpx.post(
        guarded.url + "/sparql",
        content=(padding + "ASK {}").encode(),
        headers={"Content-Type": "application/sparql-query", "Origin": "https://example.org"},
        timeout=30,
    )
    assert direct.status_code == 413
    assert direct.headers["access-control-allow-origin"] == "*"  # a browser can read why

    def chunks():  # no Content-Length: refused while reading
        for _ in range(10):
            yield b"#" + b"x" * 5_000 + b"\n"
        yield b"ASK {}"

    chunked = httpx.post(
        guarded.url + "/sparql",
        content=chunks(),
        headers={"Content-Type": "application/sparql-query"},
        timeout=30,
    )
    assert chunked.status_code == 413
    long_get = httpx.get(guarded.url + "/sparql", params={"query": padding + "ASK {}"}, timeout=30)
    assert long_get.status_code == 414
    assert query(guarded, "ASK {}").status_code == 200


def test_cors(guarded: ServerProcess) -> None:
    origin = {"Origin": "https://example.org"}
    response = httpx.get(guarded.url + "/sparql", params={"query": "ASK {}"}, headers=origin, timeout=30)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    preflight = httpx.options(
        guarded.url + "/sparql",
        headers={
            **origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in preflight.headers


def test_gzip_when_asked(guarded: ServerProcess) -> None:
    text = "SELECT * WHERE { ?s ?p ?o } LIMIT 100"
    with httpx.Client(timeout=30) as client:
        plain = client.post(
            guarded.url + "/sparql",
            data={"query": text},
            headers={"Accept": JSON, "Accept-Encoding": "identity"},
        )
        zipped = client.post(
            guarded.url + "/sparql", data={"query": text}, headers={"Accept": JSON, "Accept-Encoding": "gzip"}
        )
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == plain.json()
    assert "accept-encoding" in zipped.headers["vary"].lower()
    with httpx.stream(
        "GET",
        guarded.url + "/sparql",
        params={"query": text},
        headers={"Accept": JSON, "Accept-Encoding": "gzip"},
        timeout=30,
    ) as raw:
        body = b"".join(raw.iter_raw())
    assert json.loads(gzip.decompress(body)) == plain.json()


def test_etag_and_last_modified_give_304(guarded: ServerProcess, site: Path) -> None:
    url = guarded.url + "/sparql"
    params = {"query": "SELECT * WHERE { ?s ?p ?o } LIMIT 3"}
    first = httpx.get(url, params=params, headers={"Accept": JSON}, timeout=30)
    assert first.status_code == 200
    etag, last_modified = first.headers["etag"], first.headers["last-modified"]
    version = (site / "manifest.json").read_text()
    assert etag.strip('"').split("-")[0] in version  # tied to the release version
    again = httpx.get(url, params=params, headers={"Accept": JSON, "If-None-Match": etag}, timeout=30)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    since = httpx.get(
        url, params=params, headers={"Accept": JSON, "If-Modified-Since": last_modified}, timeout=30
    )
    assert since.status_code == 304
    other = httpx.get(url, params=params, headers={"Accept": "text/csv", "If-None-Match": etag}, timeout=30)
    assert other.status_code == 200  # another representation has another validator
    assert other.headers["etag"] != etag
    stale = httpx.get(url, params=params, headers={"Accept": JSON, "If-None-Match": '"other"'}, timeout=30)
    assert stale.status_code == 200
