"""A served release is never pruned, and a server whose release is deleted anyway says so
and recovers. Real server (`twinning-kg serve` subprocess), real builds into the same `--out`.
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
from rdflib import Dataset, Literal, URIRef
from rdflib.namespace import RDFS

from conftest import ROOT, ServerProcess, run_cli
from sparql_support import serve, sparql_workers
from twinning_kg.config import Settings
from twinning_kg.release.builder import KEEP_RELEASES, write_release
from twinning_kg.release.leases import LEASES, Lease, leased

BASE = Settings().base_iri
THING = URIRef(f"{BASE}id/place/lease-test")
LABEL_QUERY = f"SELECT ?l WHERE {{ <{THING}> <{RDFS.label}> ?l }}"


def publish(out: Path, label: str) -> Path:
    """A release whose one fact is `label`, written the way every build writes (and prunes)."""
    dataset = Dataset()
    dataset.graph(URIRef(f"{BASE}graph/test")).add((THING, RDFS.label, Literal(label)))
    return write_release(dataset, out, Settings()).path


def label_served(server: ServerProcess) -> str:
    response = httpx.get(server.url + "/sparql", params={"query": LABEL_QUERY},
                         headers={"Accept": "application/sparql-results+json"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["results"]["bindings"][0]["l"]["value"]


def published(server: ServerProcess) -> dict[str, bytes]:
    """What a harvester reads: the dumps, the catalog and the VoID."""
    out = {}
    for path in ("/dumps/twinning-kg.nt", "/dumps/SHA256SUMS", "/catalog?format=ttl",
                 "/.well-known/void?format=ttl", "/dumps/"):
        response = httpx.get(server.url + path, timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        out[path] = response.content
    return out


def wait_for(condition, timeout: float = 20):  # noqa: ANN001, ANN201 - callable() -> value
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def test_three_builds_into_the_served_out_never_prune_it(tmp_path: Path) -> None:
    out = tmp_path / "site"
    served = publish(out, "first")
    server = serve(out, tmp_path)
    try:
        before = published(server)
        lease_files = list((out.parent / "site.releases" / LEASES).glob(f"{served.name}.*.lease"))
        assert len(lease_files) == 1, "the server leases what it serves"
        assert f"pid {server.proc.pid}" in lease_files[0].read_text()
        for label in ("second", "third"):
            publish(out, label)
        # the third build with the real command line, the project's own data
        run_cli("build", "--out", str(out), check=True)
        assert served.is_dir(), "the served release survived three builds"
        releases = [p for p in (tmp_path / "site.releases").iterdir() if not p.name.startswith(".")]
        assert len(releases) == KEEP_RELEASES + 1, "the newest three, and the leased one"
        assert published(server) == before, "dumps, catalog and VoID still answer, unchanged"
        assert label_served(server) == "first"
        # a worker that dies reopens the store: it is still there
        for pid in sparql_workers(server.proc.pid):
            os.kill(pid, signal.SIGKILL)
        assert wait_for(lambda: _label_or_none(server)) == "first"
        publish(out, "fourth")
        assert served.is_dir() and published(server) == before
    finally:
        server.stop()
    assert not lease_files[0].exists(), "the lease ends with the server"
    publish(out, "fifth")  # now nothing holds it: the next build prunes it
    assert not served.exists()
    assert "Traceback" not in server.log()


def _label_or_none(server: ServerProcess) -> str | None:
    try:
        return label_served(server)
    except (AssertionError, httpx.HTTPError):
        return None


def test_a_deleted_release_is_reported_and_the_current_one_served(tmp_path: Path) -> None:
    out = tmp_path / "site"
    served = publish(out, "old")
    server = serve(out, tmp_path)
    try:
        old_etag = httpx.get(server.url + "/dumps/", timeout=30).headers["etag"]
        workers = sparql_workers(server.proc.pid)
        current = publish(out, "new")
        shutil.rmtree(served)  # by hand: no build would
        first = httpx.get(server.url + "/dumps/twinning-kg.nt", timeout=30)
        if first.status_code == 503:  # the window before the switch: a reason, not a 404
            assert "has been removed" in first.text and first.headers["retry-after"]
            assert first.headers["content-security-policy"]
        assert wait_for(lambda: _label_or_none(server) == "new")
        assert httpx.get(server.url + "/dumps/twinning-kg.nt", timeout=30).text.count('"new"') == 1
        published(server)
        assert httpx.get(server.url + "/dumps/", timeout=30).headers["etag"] != old_etag
        assert server.proc.poll() is None, "no crash"
        # fresh workers on the new store, as many as before; the old ones are gone
        wait_for(lambda: len(sparql_workers(server.proc.pid)) == len(workers)
                 and not sparql_workers(server.proc.pid) & workers)
        leases = [p.name for p in (tmp_path / "site.releases" / LEASES).glob("*.lease")]
        assert leases and all(name.startswith(current.name) for name in leases)
    finally:
        server.stop()
    log = server.log()
    assert "has been removed from disk" in log and f"now serving release {current.name}" in log
    assert "Traceback" not in log


def test_with_no_release_left_it_answers_503_until_a_build(tmp_path: Path) -> None:
    out = tmp_path / "site"
    served = publish(out, "only")
    server = serve(out, tmp_path)
    try:
        shutil.rmtree(served)
        for _ in range(8):  # answered, clearly, every time; never a crash loop
            response = httpx.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=30)
            assert response.status_code == 503, response.text
            assert "removed" in response.text and "Traceback" not in response.text
            assert response.headers["retry-after"]
            time.sleep(0.5)
        assert server.proc.poll() is None
        publish(out, "rebuilt")
        assert wait_for(lambda: _label_or_none(server) == "rebuilt")
    finally:
        server.stop()
    log = server.log()
    assert log.count("no release to switch to") == 1, "the failure is logged once, not every retry"
    assert "Traceback" not in log


def _hold_lease(release: Path) -> subprocess.Popen:
    """Another process holding a lease on `release` until killed."""
    code = ("import sys, time; from pathlib import Path; from twinning_kg.release.leases import Lease; "
            "lease = Lease.take(Path(sys.argv[1])); print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(release)], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_lease_keeps_a_release_and_a_dead_ones_does_not(tmp_path: Path) -> None:
    out = tmp_path / "site"
    kept, dropped = publish(out, "kept"), publish(out, "dropped")
    holder, dead = _hold_lease(kept), _hold_lease(dropped)
    try:
        dead.kill()  # killed without releasing: its lease file stays, its lock is gone
        dead.wait()
        releases = tmp_path / "site.releases"
        assert list((releases / LEASES).glob(f"{dropped.name}.*.lease")), "the dead lease's file"
        assert leased(releases, kept.name) and not leased(releases, dropped.name)
        assert not list((releases / LEASES).glob(f"{dropped.name}.*.lease")), "stale lease removed"
        for n in range(KEEP_RELEASES + 1):
            publish(out, f"newer {n}")
        assert kept.is_dir(), "leased by a live process"
        assert not dropped.exists(), "its owner died: pruned"
    finally:
        holder.kill()
        holder.wait()


def test_only_releases_a_build_manages_are_leased(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "manifest.json").write_text("{}")
    assert Lease.take(plain) is None  # nothing prunes it, nothing to lease
    out = tmp_path / "site"
    release = publish(out, "x")
    shutil.rmtree(release)
    with pytest.raises(Exception, match="gone"):
        Lease.take(release)
