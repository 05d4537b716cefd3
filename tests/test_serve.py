"""`twinning-kg serve`, the one command: builds when needed, refuses bad data, stops cleanly.

Runs the real CLI in a subprocess; a copy of ontology/, data/ and shapes/ selected with
TWINNING_KG_HOME lets a test break the data without touching the checkout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, ServerProcess, run_cli
from sparql_support import children, sparql_workers


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    for part in ("ontology", "data", "shapes"):
        shutil.copytree(ROOT / part, home / part)
    return home


def test_serve_builds_a_missing_release_then_serves_and_stops_cleanly(tmp_path: Path) -> None:
    graph = tmp_path / "site"
    server = ServerProcess(["--graph", str(graph)]).start(tmp_path)
    try:
        assert (graph / "manifest.json").is_file(), "the release was built first"
        workers = sparql_workers(server.proc.pid)
        assert len(workers) == 4  # 3 for /sparql, 1 reserved for the pages
        # each worker in a network namespace of its own (none shared, not ours)
        namespaces = {os.readlink(f"/proc/{pid}/ns/net") for pid in workers}
        assert len(namespaces) == 4 and os.readlink("/proc/self/ns/net") not in namespaces
        assert not any(children(pid) for pid in workers)  # the relays are threads: nothing to orphan
        response = httpx.get(server.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"}, timeout=30)
        assert response.status_code == 200
        assert "<boolean>true</boolean>" in response.text
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=30) == 0
    finally:
        server.stop()
    log = server.log()
    assert f"{server.url}/" in log, "prints where to point a browser"
    assert '"GET /sparql?query=ASK' in log and " 200 " in log, "one log line per request"
    assert "Traceback" not in log
    time.sleep(0.5)
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), "a worker outlived the server"


def test_sigint_with_a_query_running_stops_workers(site: Path, tmp_path: Path) -> None:
    server = ServerProcess(["--graph", str(site), "--timeout", "60"]).start(tmp_path)
    workers = sparql_workers(server.proc.pid)
    runaway = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import httpx, sys; httpx.get(sys.argv[1], timeout=120)",
            server.url
            + "/sparql?query=SELECT+(COUNT(*)+AS+%3Fn)+{+%3Fa+%3Fb+%3Fc+.+%3Fd+%3Fe+%3Ff+.+%3Fg+%3Fh+%3Fi+}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.0)
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=30) == 0
    finally:
        runaway.kill()
        runaway.wait()
        server.stop()
    time.sleep(0.5)
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists(), "a worker outlived the server"
    assert "Traceback" not in server.log()


def test_serve_refuses_data_that_fails_the_shapes(tmp_path: Path) -> None:
    home = _home(tmp_path)
    (home / "data" / "kassel" / "zz-broken.ttl").write_text(
        "@prefix tw: <ontology#> .\n@prefix pship: <id/partnership/> .\n"
        "pship:kassel--nowhere a tw:Partnership .\n",
        encoding="utf-8",
    )
    proc = run_cli(
        "serve",
        "--graph",
        str(tmp_path / "site"),
        "--port",
        "9",
        env={**os.environ, "TWINNING_KG_HOME": str(home)},
        timeout=300,
    )
    assert proc.returncode != 0
    assert "refusing to serve" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "site" / "manifest.json").exists()


def test_contradicting_service_options_are_a_usage_error(tmp_path: Path) -> None:
    proc = run_cli(
        "serve",
        "--graph",
        str(tmp_path / "none"),
        "--no-service",
        "--service-allow",
        "https://query.wikidata.org/sparql",
    )
    assert proc.returncode == 2
    assert "contradict" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["--no-service"], ["--service-allow", "http://127.0.0.1:9/sparql"]])
def test_service_allow_list_is_configurable(site: Path, tmp_path: Path, args: list[str]) -> None:
    server = ServerProcess(["--graph", str(site), *args]).start(tmp_path)
    try:
        wikidata = "SELECT * WHERE { SERVICE <https://query.wikidata.org/sparql> { ?s ?p ?o } }"
        response = httpx.post(server.url + "/sparql", data={"query": wikidata}, timeout=30)
        assert response.status_code == 403
        description = httpx.get(server.url + "/sparql", headers={"Accept": "text/turtle"}, timeout=30).text
        assert ("BasicFederatedQuery" in description) is (args[0] != "--no-service")
    finally:
        server.stop()


def _fronts(pid: int) -> set[int]:
    """The front processes of `serve --processes N` (children started with `--fd`)."""
    return {c for c in children(pid) if b"--fd" in Path(f"/proc/{c}/cmdline").read_bytes()}


def test_processes_share_the_socket_and_stop_together(site: Path, tmp_path: Path) -> None:
    server = ServerProcess(["--graph", str(site), "--processes", "2", "--workers", "2"]).start(tmp_path)
    assert server.proc is not None
    try:
        fronts = _fronts(server.proc.pid)
        assert len(fronts) == 2
        assert all(len(sparql_workers(front)) >= 2 for front in fronts)  # each with its own workers
        for _ in range(20):  # fresh connections: whichever front accepts, the same answer
            response = httpx.get(server.url + "/sparql", params={"query": "ASK { ?s ?p ?o }"},
                                 headers={"Accept": "application/sparql-results+json"}, timeout=30)
            assert response.status_code == 200 and response.json()["boolean"] is True
        # a front that dies is replaced, and the server keeps answering
        lost = sorted(fronts)[0]
        os.kill(lost, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(_fronts(server.proc.pid)) != 2 or lost in _fronts(
                server.proc.pid)):
            time.sleep(0.2)
        assert len(_fronts(server.proc.pid)) == 2 and lost not in _fronts(server.proc.pid)
        everything = {p for front in _fronts(server.proc.pid) for p in {front, *children(front)}}
    finally:
        status = server.stop()
    assert status == 0
    time.sleep(0.5)
    assert not [p for p in everything if Path(f"/proc/{p}").exists()
                and "Z" not in Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]]
    assert "Traceback" not in server.log()
