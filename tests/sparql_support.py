"""Helpers shared by the SPARQL endpoint tests: small releases and servers over them."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from rdflib import Dataset, URIRef

from conftest import ServerProcess
from twinning_kg.config import Settings
from twinning_kg.release.builder import write_release


def release_of(
    out: Path, graphs: dict[str, Iterable[tuple]] | None = None, files: dict[str, Path] | None = None
) -> Path:
    """Write a release holding `graphs` (name -> triples) and `files` (name -> N-Triples file)."""
    dataset = Dataset()
    for name, triples in (graphs or {}).items():
        graph = dataset.graph(URIRef(name))
        for triple in triples:
            graph.add(triple)
    for name, path in (files or {}).items():
        dataset.graph(URIRef(name)).parse(path, format="nt")
    write_release(dataset, out, Settings())
    return out


def serve(release: Path, log_dir: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`twinning-kg serve --graph RELEASE ARGS` on a free port, ready to answer."""
    return ServerProcess(["--graph", str(release), *args], env=env).start(log_dir)


def children(pid: int) -> set[int]:
    """Live child process ids of `pid` (from /proc, so no extra dependency)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def sparql_workers(pid: int) -> set[int]:
    """The SPARQL worker processes among the children of the server `pid`."""
    workers = set()
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:  # multiprocessing's spawned children (not its resource tracker)
            workers.add(child)
    return workers


# ------------------------------------------------------------------ listeners and stub services


class Listener:
    """A plain TCP listener on 127.0.0.1 that records every connection and its first bytes.

    Stands for anything a query must never reach (an internal service, another SPARQL
    server): it answers garbage, so a caller that did reach it fails fast."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/sparql"
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
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 500 Nope\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


class StubEndpoint:
    """A minimal SPARQL endpoint on 127.0.0.1 to put on the allow-list (no test reaches the internet).

    Every request is recorded (method, path, headers, body). The answer is one solution
    binding ?x to "from-stub" (`/wikidata`: the JSON results in `wikidata`); a sub-query
    containing the literal "delay:SECONDS" is answered after that many seconds (to end a
    query right before or after the time limit); `/big` answers `big_rows` solutions;
    `/redirect` answers 302 to `redirect_to`."""

    def __init__(self) -> None:
        stub = self
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.redirect_to = "http://127.0.0.1:9/"
        self.big_rows = 10_000
        # What `/wikidata` answers, whatever it is asked (a test sets it).
        self.wikidata: dict = {"head": {"vars": []}, "results": {"bindings": []}}

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                stub.requests.append((self.command, self.path, headers, body))
                if self.path.startswith("/redirect"):
                    self.send_response(302)
                    self.send_header("Location", stub.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                delay = re.search(rb"delay:([0-9.]+)", body + urllib.parse.unquote_to_bytes(self.path))
                if delay:
                    time.sleep(float(delay.group(1)))
                if self.path.startswith("/wikidata"):  # a stand-in for the query service
                    results = stub.wikidata
                else:
                    rows = stub.big_rows if self.path.startswith("/big") else 1
                    binding = {"x": {"type": "literal", "value": "from-stub"}}
                    results = {"head": {"vars": ["x"]}, "results": {"bindings": [binding] * rows}}
                out = json.dumps(results).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/sparql-results+json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign] - a caller that hung up
        self.port = self.server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/sparql"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def paths(self) -> list[str]:
        return [request[1] for request in self.requests]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def escape_differentials(target: str) -> list[str]:
    """Queries that read differently with SPARQL's \\u escapes applied everywhere (§19.2, what
    the guard does) and with pyoxigraph's, which applies them only in strings and IRIs:
    given the received text, pyoxigraph calls `target` (for it, the comment runs to the end
    of the line and hides the opening of the long string). They are harmless only because
    the engine runs the text the guard read."""
    return [
        f'SELECT * {{ ?s ?p ?o # \\u000A . ?s ?p """\nSERVICE <{target}> {{ ?a ?b ?c }} }} # """ }}',
        f"SELECT * {{ ?s ?p ?o # \\u000D . ?s ?p '''\nSERVICE <{target}> {{ ?a ?b ?c }} }} # ''' }}",
    ]


def spellings(target: str) -> list[str]:
    """Queries that call SERVICE `target` (an http://127.0.0.1:PORT/sparql URL), spelt the
    ways an attacker would to slip past a guard: case, white space, comments, `.` before
    the keyword, strings and IRIs holding < > quotes or braces, nesting, prefixed names,
    BASE, relative IRIs, variables, SILENT, \\u escapes, PN_LOCAL escapes, and the
    spellings pyoxigraph reads more loosely than the grammar."""
    parts = urllib.parse.urlsplit(target)
    root = f"{parts.scheme}://{parts.netloc}/"
    host, port = parts.hostname, parts.port
    esc = "".join(f"\\u{ord(c):04X}" for c in target[:7]) + target[7:]  # `http://` escaped
    return [
        f"SELECT * WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"select * where {{ sErViCe <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE SILENT <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT*{{SERVICE silent<{target}>{{?s ?p ?o}}}}",
        f"SELECT*{{SERVICE<{target}>{{}}}}",
        f"SELECT * {{\n\tSERVICE\r\n<{target}>\t{{ ?s ?p ?o }} }}",
        f"SELECT * {{ # }} SERVICE <http://x/> {{\n SERVICE # comment {{ }}\n <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ ?s ?p ?o .SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND('>' AS ?z) .SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND('<' AS ?z) .SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND(\"'\" AS ?z) .SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND(\"}}\" AS ?z) . SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND(\"a\\\"}} # b\" AS ?z) . SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND('''}}\n# '\"\"\" >''' AS ?z) . SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ OPTIONAL {{ ?s <http://x/#> ?o }} . SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ BIND(2 AS ?z) FILTER(?z < 3 && ?z > 1) SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ {{ {{ OPTIONAL {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }} }} }}",
        f"SELECT * {{ ?s ?p ?o FILTER EXISTS {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }}",
        f"SELECT * {{ ?s ?p ?o MINUS {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }}",
        f"SELECT * {{ {{ SELECT ?s {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }} }}",
        f"SELECT * {{ {{ GRAPH ?g {{ ?s ?p ?o }} }} UNION {{ SERVICE <{target}> {{ ?s ?p ?o }} }} }}",
        f"SELECT * {{ BIND(EXISTS {{ SERVICE <{target}> {{ ?s ?p ?o }} }} AS ?b) }}",
        f"ASK {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"DESCRIBE ?s WHERE {{ SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"PREFIX x: <{root}> SELECT * {{ SERVICE x:sparql {{ ?s ?p ?o }} }}",
        f"PREFIX x: <{target}> SELECT * {{ SERVICE x: {{ ?s ?p ?o }} }}",
        f"PREFIX : <{root}> SELECT * {{ SERVICE :sparql {{ ?s ?p ?o }} }}",
        f"PREFIX x: <{root}> SELECT * {{ SERVICE x:\\~sparql {{ ?s ?p ?o }} }}",
        f"PREFIX x: <{root}> SELECT * {{ SERVICE x:sp%61rql {{ ?s ?p ?o }} }}",
        f"PREFIX x: <{root}> SELECT * {{ SERVICE x:sparql\\?a\\=1 {{ ?s ?p ?o }} }}",
        f"BASE <{root}> SELECT * WHERE {{ SERVICE <sparql> {{ ?s ?p ?o }} }}",
        f"BASE <{root}a/b/> SELECT * WHERE {{ SERVICE <../../sparql> {{ ?s ?p ?o }} }}",
        f"BASE <{root}> PREFIX x: <> SELECT * WHERE {{ SERVICE x:sparql {{ ?s ?p ?o }} }}",
        f"BASE <http://{host}:{port}> SELECT * WHERE {{ SERVICE </sparql> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE <//{host}:{port}/sparql> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ VALUES ?e {{ <{target}> }} SERVICE ?e {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ BIND(<{target}> AS $e) SERVICE $e {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ \\u0053ERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ \\U00000053ERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE <{esc}> {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ SERVICE \\u003C{target}\\u003E {{ ?s ?p ?o }} }}",
        f"SELECT * WHERE {{ ?s ?p ?o # \\u000A SERVICE <{target}> {{ ?s ?p ?o }} }}",
        f"PREFIX SILENT: <{root}> PREFIX : <{root}> SELECT * {{ SERVICE SILENT:sparql {{ ?s ?p ?o }} }}",
        f"PREFIX x: <{root}> SELECT * {{ SERVICEx:sparql {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE <{target.upper().replace('HTTP://', 'http://')}> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE <http://127.1:{port}/sparql> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ SERVICE <http://localhost:{port}/sparql> {{ ?s ?p ?o }} }}",
    ]


def unguarded_worker_main(conn: Any, config: Any) -> None:
    """A query worker whose guard sees no SERVICE clause (and so routes none): what a guard
    that misread the query would pass on. Only the worker's isolation stands in the way."""
    from twinning_kg.query import guard as query_guard
    from twinning_kg.query import worker

    def blind(query: str, *args: Any, **kwargs: Any) -> query_guard.QueryInfo:
        form = "ASK" if query.lstrip().upper().startswith("ASK") else "SELECT"
        return query_guard.QueryInfo(form=form, has_dataset_clause=False, services=(), text=query)

    query_guard.check = blind  # type: ignore[assignment] - the point of this worker
    worker.worker_main(conn, config)


def client_from(address: str, timeout: float = 60) -> httpx.Client:
    """An HTTP client whose connections come from `address` (any 127.x.y.z works on Linux's
    loopback), so one test can act as several clients to the server's admission control."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=timeout)


def unisolated_worker_main(conn: Any, config: Any) -> None:
    """A query worker on a host that allows neither a network namespace nor seccomp."""
    from twinning_kg.query import sandbox, worker

    sandbox._new_network_namespace = lambda: "unshare: Operation not permitted (simulated)"  # type: ignore[assignment]
    sandbox._seccomp_no_network = lambda: "libseccomp not found (simulated)"  # type: ignore[assignment]
    worker.worker_main(conn, config)
