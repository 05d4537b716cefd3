"""`twinning-kg build --out DIR` through the real CLI: release layout, determinism,
parsers (rdflib, Oxigraph, Raptor), checksums, the store, atomicity, pruning.

Two projects are built: the small fixture project `tests/fixtures/build_project/`
(controlled; copied to a temp dir and selected with TWINNING_KG_HOME so tests can break
it) and the real Kassel data (the session fixture `site` from conftest).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph
from rdflib.compare import isomorphic

from conftest import FIXTURES, ROOT, run_cli
from system_tools import program

BASE = "https://w3id.org/twinning-kg/"
TW = f"{BASE}ontology#"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
STEM = "twinning-kg"
DUMPS = [f"{STEM}.{ext}" for ext in ("ttl", "nt", "nq", "jsonld", "rdf")]
RDFLIB_FORMATS = {"ttl": "turtle", "jsonld": "json-ld", "rdf": "xml", "nt": "nt"}


# --- helpers -------------------------------------------------------------------------------


def copy_project(tmp_path: Path) -> Path:
    """A private copy of the fixture project that a test may break.

    The catalog's hand-written parts (`catalog/`) are not ours to fake: the real ones
    are copied in, so the catalog and VoID are written as in a real build.
    """
    home = tmp_path / "project"
    shutil.copytree(FIXTURES / "build_project", home)
    shutil.copytree(ROOT / "catalog", home / "catalog")
    return home


def build(out: Path, home: Path | None = None, *args: str, seed: str = "0") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    if home is not None:
        env["TWINNING_KG_HOME"] = str(home)
    else:
        env.pop("TWINNING_KG_HOME", None)
    return run_cli("build", "--out", str(out), *args, env=env)


def published_files(release: Path) -> dict[str, bytes]:
    """Every file of a release except the store (RocksDB files are not byte-stable)."""
    return {
        str(p.relative_to(release)): p.read_bytes()
        for p in sorted(release.rglob("*"))
        if p.is_file() and "store" not in p.relative_to(release).parts
    }


def manifest(release: Path) -> dict:
    return json.loads((release / "manifest.json").read_text())


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture project built once (read-only for the tests that use it)."""
    tmp = tmp_path_factory.mktemp("fixture-build")
    out = tmp / "site"
    proc = build(out, copy_project(tmp))
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(params=["fixture", "kassel"])
def any_site(request: pytest.FixtureRequest) -> Path:
    """Both builds, for the checks that must hold for any release."""
    return request.getfixturevalue("fixture_site" if request.param == "fixture" else "site")


# --- layout and determinism ----------------------------------------------------------------


def test_release_layout(fixture_site: Path) -> None:
    assert fixture_site.is_symlink(), "DIR must be a symlink that the build swaps"
    target = fixture_site.resolve()
    assert target.parent.name == "site.releases"
    data = manifest(fixture_site)
    assert target.name == data["version"]
    expected = {*DUMPS, *(f"{d}.gz" for d in DUMPS), "SHA256SUMS", "catalog.ttl", "void.ttl"}
    assert expected == set(data["files"])
    assert set(data["files"]) | {"manifest.json"} == set(published_files(fixture_site))
    assert (target / "store").is_dir()
    assert data["base_iri"] == BASE
    # 28 stated + 5 tw:curated (3 places, 2 partnerships: the area's graph makes them curated)
    assert data["graphs"] == {f"{BASE}graph/kassel": 33, f"{BASE}graph/ontology": 19}
    assert data["quads"] == 52 and data["triples"] == 52
    assert "date" not in json.dumps(data).lower() and "time" not in json.dumps(data).lower()


def test_rebuild_is_byte_identical(fixture_site: Path, tmp_path: Path) -> None:
    """Another directory, another hash seed: the same bytes (store excepted)."""
    again = tmp_path / "again"
    proc = build(again, copy_project(tmp_path), seed="4242")
    assert proc.returncode == 0, proc.stderr
    assert published_files(again) == published_files(fixture_site)


def test_real_data_rebuild_is_byte_identical(site: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    proc = build(again, seed="97")
    assert proc.returncode == 0, proc.stderr
    first, second = published_files(site), published_files(again)
    assert first.keys() == second.keys()
    assert [n for n in first if first[n] != second[n]] == []


def test_manifest_is_sorted_and_counts_match_the_nquads(any_site: Path) -> None:
    raw = (any_site / "manifest.json").read_text()
    data = json.loads(raw)
    assert raw == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    nq = (any_site / f"{STEM}.nq").read_bytes()
    assert data["version"] == hashlib.sha256(nq).hexdigest()
    quads = list(ox.parse(nq, format=ox.RdfFormat.N_QUADS))
    assert len(quads) == data["quads"]
    per_graph: dict[str, int] = {}
    for q in quads:
        per_graph[q.graph_name.value] = per_graph.get(q.graph_name.value, 0) + 1
    assert per_graph == data["graphs"]
    for name, info in data["files"].items():
        body = (any_site / name).read_bytes()
        assert info["bytes"] == len(body), name
        assert info["sha256"] == hashlib.sha256(body).hexdigest(), name


# --- every dump parses, and they agree ----------------------------------------------------


def test_every_dump_parses_to_the_same_graph(any_site: Path) -> None:
    data = manifest(any_site)
    reference = Graph().parse(any_site / f"{STEM}.nt", format="nt")
    assert len(reference) == data["triples"]
    for ext, fmt in RDFLIB_FORMATS.items():
        graph = Graph().parse(any_site / f"{STEM}.{ext}", format=fmt)
        assert isomorphic(graph, reference), f"{ext} differs from the N-Triples dump"
    nt = [q.triple for q in ox.parse(path=str(any_site / f"{STEM}.nt"), format=ox.RdfFormat.N_TRIPLES)]
    assert len(nt) == data["triples"]
    union = {q.triple for q in ox.parse(path=str(any_site / f"{STEM}.nq"), format=ox.RdfFormat.N_QUADS)}
    assert union == set(nt)


def test_nquads_are_rdfc_canonical(any_site: Path) -> None:
    """Sorted lines, and re-canonicalising the parsed dump gives the same bytes."""
    nq = (any_site / f"{STEM}.nq").read_bytes()
    lines = nq.splitlines()
    assert lines == sorted(lines)
    dataset = ox.Dataset(ox.parse(nq, format=ox.RdfFormat.N_QUADS))
    dataset.canonicalize(ox.CanonicalizationAlgorithm.RDFC_1_0)
    again = sorted(ox.serialize(dataset, format=ox.RdfFormat.N_QUADS).splitlines())
    assert again == lines
    nt = (any_site / f"{STEM}.nt").read_bytes().splitlines()
    assert nt == sorted(set(nt))
    for name in (f"{STEM}.nq", f"{STEM}.nt", f"{STEM}.ttl"):  # no random blank-node labels
        labels = set(re.findall(rb"_:[A-Za-z0-9]+", (any_site / name).read_bytes()))
        assert all(re.fullmatch(rb"_:c14n\d+", label) for label in labels), (name, labels)


def test_turtle_uses_prefixes(any_site: Path) -> None:
    text = (any_site / f"{STEM}.ttl").read_text()
    assert "@prefix tw: <https://w3id.org/twinning-kg/ontology#> ." in text
    assert "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> ." in text
    assert "@prefix brick:" not in text, "unused rdflib default prefixes must not leak into dumps"
    assert text.endswith("\n")


@pytest.mark.rapper
def test_rapper_parses_the_turtle(any_site: Path) -> None:
    rapper = program("rapper")
    for name, syntax in ((f"{STEM}.ttl", "turtle"), (f"{STEM}.rdf", "rdfxml"), (f"{STEM}.nt", "ntriples")):
        proc = subprocess.run(
            [rapper, "-i", syntax, "-c", str(any_site / name)], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        assert f"returned {manifest(any_site)['triples']} triples" in proc.stderr, proc.stderr


def test_store_opens_read_only_with_the_manifest_counts(any_site: Path) -> None:
    data = manifest(any_site)
    store = ox.Store.read_only(str(any_site / "store"))
    assert len(store) == data["quads"]
    graphs = {g.value for g in store.named_graphs()}
    assert graphs == set(data["graphs"])
    for iri, count in data["graphs"].items():
        assert len(list(store.quads_for_pattern(None, None, None, ox.NamedNode(iri)))) == count
    result = store.query("SELECT (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } }")
    assert int(next(iter(result))["n"].value) == data["quads"]


def test_sha256sums_verify_with_coreutils(any_site: Path) -> None:
    sums = (any_site / "SHA256SUMS").read_text().splitlines()
    names = [line.split("  ", 1)[1] for line in sums]
    assert names == sorted(names) and set(DUMPS) <= set(names)
    assert "manifest.json" not in names and "SHA256SUMS" not in names
    proc = subprocess.run(  # coreutils: on every Debian
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=any_site, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(": OK") == len(names)


def test_gzip_twins_decompress_to_the_same_bytes(fixture_site: Path) -> None:
    for name in DUMPS:
        packed = (fixture_site / f"{name}.gz").read_bytes()
        assert gzip.decompress(packed) == (fixture_site / name).read_bytes()
        flags, mtime = packed[3], int.from_bytes(packed[4:8], "little")
        assert mtime == 0 and not flags & 0x08, "no timestamp and no file name in the gzip header"


# --- materialised tw:twinnedWith -----------------------------------------------------------


def _twinned(nq: Path) -> set[tuple[str, str, str]]:
    return {
        (q.subject.value, q.object.value, q.graph_name.value)
        for q in ox.parse(path=str(nq), format=ox.RdfFormat.N_QUADS)
        if q.predicate.value == f"{TW}twinnedWith"
    }


def test_twinned_with_is_materialised_both_ways(fixture_site: Path) -> None:
    place, graph = f"{BASE}id/place/", f"{BASE}graph/kassel"
    assert _twinned(fixture_site / f"{STEM}.nq") == {
        (f"{place}kassel", f"{place}florence", graph),
        (f"{place}florence", f"{place}kassel", graph),
        (f"{place}kassel", f"{place}ramat-gan", graph),
        (f"{place}ramat-gan", f"{place}kassel", graph),
    }


def test_twinned_with_is_symmetric_in_the_real_data(site: Path) -> None:
    """Exactly both directions of every partnership's pair, in the partnership's graph
    (provisional partnerships give no link: they rest on weak sources only)."""
    partners: dict[tuple[str, str], set[str]] = {}
    provisional = set()
    for q in ox.parse(path=str(site / f"{STEM}.nq"), format=ox.RdfFormat.N_QUADS):
        if q.predicate.value == f"{TW}partner":
            partners.setdefault((q.subject.value, q.graph_name.value), set()).add(q.object.value)
        if q.predicate.value == RDF_TYPE and q.object.value == f"{TW}ProvisionalPartnership":
            provisional.add(q.subject.value)
    assert provisional, "Zhytomyr is provisional"
    partners = {key: pair for key, pair in partners.items() if key[0] not in provisional}
    assert partners, "no partnership in the release: the test would compare nothing"
    expected = set()
    for (_, graph), pair in partners.items():
        a, b = sorted(pair)
        expected |= {(a, b, graph), (b, a, graph)}
    links = _twinned(site / f"{STEM}.nq")
    assert links == expected
    assert all((b, a, g) in links for a, b, g in links)


# --- bad input: clear errors, the last good release stays ---------------------------------


@pytest.fixture
def good_build(tmp_path: Path) -> tuple[Path, Path, Path, dict[str, bytes]]:
    home = copy_project(tmp_path)
    out = tmp_path / "out" / "site"
    proc = build(out, home)
    assert proc.returncode == 0, proc.stderr
    return home, out, out.resolve(), published_files(out)


def assert_untouched(out: Path, target: Path, files: dict[str, bytes]) -> None:
    assert out.resolve() == target
    assert published_files(out) == files
    assert [p.name for p in out.parent.joinpath("site.releases").iterdir() if p.name.startswith(".tmp")] == []


def test_broken_turtle_exits_2_names_file_and_line_and_keeps_release(good_build) -> None:
    home, out, target, files = good_build
    broken = home / "data" / "kassel" / "places.ttl"
    lines = broken.read_text().splitlines()
    lines.insert(7, "place:bad a tw:Place ; rdfs:label \"unterminated .")
    broken.write_text("\n".join(lines) + "\n")
    proc = build(out, home)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{broken}:8" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_untouched(out, target, files)


def test_shacl_violation_exits_1_and_keeps_release(good_build) -> None:
    home, out, target, files = good_build
    bad = home / "data" / "kassel" / "bad-partnership.ttl"
    bad.write_text(
        "@prefix tw: <ontology#> .\n@prefix place: <id/place/> .\n"
        "<id/partnership/kassel--nowhere> a tw:Partnership ;\n  tw:partner place:kassel .\n"
    )
    proc = build(out, home)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "kassel--nowhere" in proc.stderr and "bad-partnership.ttl" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert_untouched(out, target, files)


def test_refuses_to_replace_a_real_directory(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    (out / "precious.txt").write_text("mine")
    proc = build(out, copy_project(tmp_path))
    assert proc.returncode == 2
    assert "refusing" in proc.stderr and "Traceback" not in proc.stderr
    assert (out / "precious.txt").read_text() == "mine" and not out.is_symlink()


def test_an_empty_directory_becomes_the_release_link(tmp_path: Path) -> None:
    out = tmp_path / "site"
    out.mkdir()
    proc = build(out, copy_project(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert out.is_symlink() and (out / "manifest.json").is_file()


def test_same_data_reuses_the_release_and_new_data_swaps(good_build) -> None:
    home, out, target, _ = good_build
    assert build(out, home).returncode == 0
    assert out.resolve() == target
    releases = out.parent / "site.releases"
    assert [p.name for p in releases.iterdir() if not p.name.startswith(".")] == [target.name]
    seen = [target]
    for n in range(3):  # three more distinct releases: only the newest three stay
        with (home / "data" / "kassel" / "places.ttl").open("a") as handle:
            handle.write(f'place:kassel rdfs:comment "revision {n}"@en .\n')
        proc = build(out, home)
        assert proc.returncode == 0, proc.stderr
        assert out.resolve() not in seen
        seen.append(out.resolve())
    kept = sorted(p for p in releases.iterdir() if not p.name.startswith("."))
    assert kept == sorted(seen[-3:])
    assert json.loads((out / "manifest.json").read_text())["version"] == out.resolve().name


def test_base_iri_option(tmp_path: Path) -> None:
    out = tmp_path / "site"
    base = "https://example.org/kg/"
    home = copy_project(tmp_path)
    proc = build(out, home, "--base-iri", base)
    assert proc.returncode == 0, proc.stderr
    data = manifest(out)
    assert data["base_iri"] == base
    assert set(data["graphs"]) == {f"{base}graph/kassel", f"{base}graph/ontology"}
    nt = (out / f"{STEM}.nt").read_text()
    assert f"<{base}id/place/kassel> <{base}ontology#twinnedWith> <{base}id/place/florence> ." in nt
    assert BASE not in nt
    bad = build(tmp_path / "other", home, "--base-iri", "not-an-iri")
    assert bad.returncode == 2 and "--base-iri" in bad.stderr and "Traceback" not in bad.stderr


def test_concurrent_builds_into_one_dir_both_finish_cleanly(tmp_path: Path) -> None:
    """Two builds at once (lock: one waits); DIR ends on one complete release, no leftovers."""
    homes = [copy_project(tmp_path / name) for name in ("a", "b")]
    with (homes[1] / "data" / "kassel" / "places.ttl").open("a") as handle:
        handle.write('place:kassel rdfs:comment "b"@en .\n')
    out = tmp_path / "site"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "twinning_kg", "build", "--out", str(out)],
            env={**os.environ, "TWINNING_KG_HOME": str(home)}, cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for home in homes
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    releases = sorted(p.name for p in (tmp_path / "site.releases").iterdir() if not p.name.startswith("."))
    assert len(releases) == 2 and out.resolve().name in releases
    data = manifest(out)
    assert data["version"] == out.resolve().name
    for name, info in data["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == info["sha256"]
