"""`twinning_kg.release.dumps` and `builder.write_release` on data the Kassel graph does not have:
blank nodes, the default graph, odd literals, other callers' datasets (the world
importer, the W3C protocol tests), the publication hook. Outputs are checked with real
parsers (rdflib, Oxigraph, `sha256sum`), and determinism across hash seeds in fresh
processes.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import BNode, Dataset, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF

from twinning_kg.config import Settings
from twinning_kg.graph import prefixes
from twinning_kg.graph.quads import oxigraph_quads, rdflib_dataset
from twinning_kg.release import builder, catalog, dumps
from twinning_kg.release.reader import Release

EX = Namespace("http://example.org/")
G1, G2 = URIRef("http://example.org/graph/one"), URIRef("http://example.org/graph/two")

TRICKY = f"""
@prefix ex: <{EX}> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:a ex:says "quote \\" backslash \\\\ tab \\t newline \\n end"@en ;
     ex:name "רמת גן"@he , "Ярославль"@ru , "İzmit"@tr ;
     ex:when "2022-02-24"^^xsd:date ;
     ex:lat "51.3127"^^xsd:decimal ;
     ex:node [ ex:p "blank one" ; ex:q [ ex:p "blank two" ] ] .
"""


def tricky_dataset() -> Dataset:
    """Two named graphs, a default-graph triple, blank nodes (rdflib labels them randomly)."""
    dataset = Dataset(default_union=True)
    dataset.bind("ex", EX)
    dataset.graph(G1).parse(data=TRICKY, format="turtle")
    dataset.graph(G2).add((EX.b, EX.knows, EX.a))
    dataset.graph(G2).add((EX.a, EX.knows, EX.b))
    dataset.add((EX.c, RDF.type, EX.Thing))  # default graph
    return dataset


# --- canonical form ------------------------------------------------------------------------


def test_blank_nodes_get_canonical_labels_whatever_rdflib_called_them() -> None:
    first = dumps.canonicalize(oxigraph_quads(tricky_dataset()))
    second = dumps.canonicalize(oxigraph_quads(tricky_dataset()))
    assert first.nquads == second.nquads and first.ntriples == second.ntriples
    labels = {word for word in first.nquads.split() if word.startswith(b"_:")}
    assert labels == {b"_:c14n0", b"_:c14n1"}
    lines = first.nquads.splitlines()
    assert lines == sorted(set(lines))


def test_oxigraph_and_rdflib_inputs_give_the_same_bytes() -> None:
    dataset = tricky_dataset()
    from_rdflib = dumps.canonicalize(oxigraph_quads(dataset))
    oxi = ox.Dataset(oxigraph_quads(dataset))
    from_oxigraph = dumps.canonicalize(oxigraph_quads(oxi))
    assert from_rdflib.nquads == from_oxigraph.nquads


def test_store_and_plain_graph_inputs() -> None:
    store = ox.Store()
    store.extend(oxigraph_quads(tricky_dataset()))
    from_store = dumps.canonicalize(oxigraph_quads(store))
    assert from_store.nquads == dumps.canonicalize(oxigraph_quads(tricky_dataset())).nquads
    graph = Graph().parse(data=TRICKY, format="turtle")
    plain = dumps.canonicalize(oxigraph_quads(graph))
    assert plain.quads == len(graph) and b"<http://example.org/graph/" not in plain.nquads


def test_counts_and_union() -> None:
    canonical = dumps.canonicalize(oxigraph_quads(tricky_dataset()))
    assert canonical.quads == len(tricky_dataset())  # rdflib's len of a Dataset counts quads
    union = Graph().parse(data=canonical.ntriples, format="nt")
    assert len(union) == canonical.triples == canonical.quads  # no triple is in two graphs here
    assert canonical.version == hashlib.sha256(canonical.nquads).hexdigest()


def test_union_keeps_a_triple_that_is_in_two_graphs_once() -> None:
    dataset = Dataset()
    for graph in (G1, G2):
        dataset.graph(graph).add((EX.a, EX.p, EX.b))
    canonical = dumps.canonicalize(oxigraph_quads(dataset))
    assert (canonical.quads, canonical.triples) == (2, 1)


def test_predicates_are_read_off_the_ntriples() -> None:
    canonical = dumps.canonicalize(oxigraph_quads(tricky_dataset()))
    parsed = {q.predicate.value for q in ox.parse(canonical.ntriples, format=ox.RdfFormat.N_TRIPLES)}
    assert dumps.predicates(canonical) == parsed and len(parsed) == 9


def test_rdflib_dataset_round_trip() -> None:
    canonical = dumps.canonicalize(oxigraph_quads(tricky_dataset()))
    back = rdflib_dataset(canonical.nquads)
    again = dumps.canonicalize(oxigraph_quads(back))
    assert again.nquads == canonical.nquads


# --- writing -------------------------------------------------------------------------------


def test_every_format_round_trips_tricky_literals(tmp_path: Path) -> None:
    canonical = dumps.canonicalize(oxigraph_quads(tricky_dataset()))
    files = dumps.write_dumps(canonical, tmp_path, {"ex": str(EX), "xsd": "http://www.w3.org/2001/XMLSchema#"})
    reference = Graph().parse(data=canonical.ntriples, format="nt")
    for ext, fmt in {"ttl": "turtle", "jsonld": "json-ld", "rdf": "xml", "nt": "nt"}.items():
        graph = Graph().parse(tmp_path / f"twinning-kg.{ext}", format=fmt)
        assert isomorphic(graph, reference), ext
    quads = list(ox.parse(path=str(tmp_path / "twinning-kg.nq"), format=ox.RdfFormat.N_QUADS))
    assert len(quads) == canonical.quads
    assert {q.graph_name for q in quads} == {ox.NamedNode(G1), ox.NamedNode(G2), ox.DefaultGraph()}
    turtle = (tmp_path / "twinning-kg.ttl").read_text()
    assert "@prefix ex: <http://example.org/> ." in turtle and "_:c14n" in turtle
    for name, info in files.items():
        assert info.sha256 == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        ext = name.split(".")[-1]
        assert info.media_type == ("application/gzip" if ext == "gz" else dumps.FORMATS[ext][1])


def test_rdfxml_refuses_a_predicate_it_cannot_write(tmp_path: Path) -> None:
    dataset = Dataset()
    dataset.add((EX.a, URIRef("http://example.org/p/123"), Literal("x")))
    canonical = dumps.canonicalize(oxigraph_quads(dataset))
    with pytest.raises(dumps.DumpError, match="RDF/XML cannot express predicate <http://example.org/p/123>"):
        dumps.write_dumps(canonical, tmp_path, {})


def test_gzip_is_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "data.nt"
    source.write_bytes(b"<http://example.org/a> <http://example.org/p> \"x\" .\n" * 1000)
    dumps.gzip_file(source, tmp_path / "one.gz")
    os.utime(source, (1, 1))
    dumps.gzip_file(source, tmp_path / "two.gz")
    one, two = (tmp_path / "one.gz").read_bytes(), (tmp_path / "two.gz").read_bytes()
    assert one == two and gzip.decompress(one) == source.read_bytes()


def test_sha256sums_is_coreutils_format(tmp_path: Path) -> None:
    for name, body in {"b.txt": b"bee\n", "a.txt": b"ay\n"}.items():
        (tmp_path / name).write_bytes(body)
    files = {name: dumps.file_info(tmp_path / name, "text/plain") for name in ("b.txt", "a.txt")}
    (tmp_path / "SHA256SUMS").write_bytes(dumps.sha256sums(files))
    assert (tmp_path / "SHA256SUMS").read_text().splitlines()[0].endswith("  a.txt")
    proc = subprocess.run(["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=tmp_path, capture_output=True)
    assert proc.returncode == 0, proc.stdout
    (tmp_path / "a.txt").write_bytes(b"tampered\n")
    tampered = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=tmp_path, capture_output=True)
    assert tampered.returncode == 1


def test_checksums_cover_the_whole_file_past_every_chunk(tmp_path: Path) -> None:
    """Files of several read chunks (every Kassel dump fits in one): a byte changed after the
    first chunk, or in the last partial one, changes the checksum, and it is sha256sum's."""
    size = 2 * dumps.CHUNK + 17
    body = bytearray(os.urandom(size))
    path = tmp_path / "big.nt"
    path.write_bytes(body)
    info = dumps.file_info(path, "application/n-triples")
    assert (info.bytes, info.sha256) == (size, hashlib.sha256(body).hexdigest())
    for offset in (dumps.CHUNK + 1, size - 1):
        changed = bytearray(body)
        changed[offset] ^= 0xFF
        path.write_bytes(changed)
        assert dumps.sha256_of(path) == hashlib.sha256(changed).hexdigest() != info.sha256
    sums = subprocess.run(["sha256sum", "big.nt"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert sums.stdout.split()[0] == dumps.sha256_of(path)


def test_prefixes() -> None:
    merged = prefixes.merge_prefixes(
        [("geo", "http://www.w3.org/2003/01/geo/wgs84_pos#"), ("x", "http://example.org/")],
        [("geo", "http://www.opengis.net/ont/geosparql#"), ("ex", "http://example.org/"), ("bad name", "u:")],
    )
    assert merged == {"geo": "http://www.w3.org/2003/01/geo/wgs84_pos#", "x": "http://example.org/"}
    used = dumps.used_prefixes(merged, b"<http://example.org/a> <http://example.org/p> \"1\" .\n")
    assert used == {"x": "http://example.org/"}


# --- write_release for other callers -------------------------------------------------------

SCRIPT = """
import hashlib, json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_dumps import tricky_dataset
from twinning_kg.release.builder import write_release
from twinning_kg.config import Settings
release = write_release(tricky_dataset(), Path(sys.argv[1]), Settings())
print(json.dumps({{p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                  for p in sorted(release.path.iterdir()) if p.is_file()}}))
"""


def test_write_release_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    """Blank nodes, several graphs, the default graph: same bytes in fresh processes."""
    script = SCRIPT.format(tests=str(Path(__file__).parent))
    digests = []
    for seed in ("1", "2", "31337"):
        proc = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"site-{seed}")],
            capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        digests.append(json.loads(proc.stdout))
    assert digests[0] == digests[1] == digests[2]
    assert {"twinning-kg.nq", "twinning-kg.ttl", "manifest.json", "SHA256SUMS"} <= set(digests[0])


def test_write_release_default_graph_and_store(tmp_path: Path) -> None:
    release = builder.write_release(tricky_dataset(), tmp_path / "site", Settings())
    manifest = release.manifest
    assert manifest["default_graph"] == 1
    assert manifest["graphs"] == {str(G1): 10, str(G2): 2}
    assert manifest["quads"] == 13
    store = ox.Store.read_only(str(release.store_path))
    assert len(store) == 13
    assert len(list(store.quads_for_pattern(None, None, None, ox.DefaultGraph()))) == 1
    labels = {q.subject.value for q in store.quads_for_pattern(None, None, None, None)
              if isinstance(q.subject, ox.BlankNode)}
    assert labels and all(label.startswith("c14n") for label in labels), "store keeps canonical labels"


def test_write_release_accepts_oxigraph_data_and_extra_files(tmp_path: Path) -> None:
    oxi = ox.Dataset(oxigraph_quads(tricky_dataset()))
    extra_path = tmp_path / "report.csv"
    extra_path.write_text("a,b\n1,2\n")
    release = builder.write_release(
        oxi, tmp_path / "site", Settings(), extra={"import-report.json": b"{}\n", "report.csv": extra_path}
    )
    files = release.manifest["files"]
    assert files["import-report.json"]["media_type"] == "application/json"
    assert files["report.csv"]["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    sums = (release.path / "SHA256SUMS").read_text()
    assert "  import-report.json\n" in sums and "  report.csv\n" in sums
    with pytest.raises(builder.BuildError, match="manifest.json"):
        builder.write_release(oxi, tmp_path / "other", Settings(), extra={"manifest.json": b"{}"})
    assert not (tmp_path / "other").exists()
    assert [p.name for p in (tmp_path / "other.releases").iterdir() if p.name != ".lock"] == []


def test_publication_hook_writes_deterministic_turtle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`describe()` graphs (blank nodes allowed) land as Turtle, listed and checksummed."""
    seen: dict[str, object] = {}

    def describe(dataset: object, files: dict, settings: Settings, stamp: object) -> dict[str, Graph]:
        seen.update(files=files, dataset=dataset)
        graph = Graph()
        graph.bind("ex", EX)
        node = BNode()
        graph.add((EX.catalog, EX.checksum, node))
        graph.add((node, EX.value, Literal(files["twinning-kg.nq"]["sha256"])))
        return {"catalog.ttl": graph}

    monkeypatch.setattr(catalog, "describe", describe)
    first = builder.write_release(tricky_dataset(), tmp_path / "one", Settings())
    second = builder.write_release(tricky_dataset(), tmp_path / "two", Settings())
    written = (first.path / "catalog.ttl").read_bytes()
    assert written == (second.path / "catalog.ttl").read_bytes()
    assert b"_:c14n0" in written and b"@prefix ex: <http://example.org/>" in written
    assert set(seen["files"]) == {f"twinning-kg.{e}{z}" for e in dumps.FORMATS for z in ("", ".gz")}
    assert first.manifest["files"]["catalog.ttl"]["media_type"] == "text/turtle"
    assert "  catalog.ttl\n" in (first.path / "SHA256SUMS").read_text()
    assert isinstance(seen["dataset"], Dataset)


def test_write_release_leaves_nothing_when_publication_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = builder.write_release(tricky_dataset(), tmp_path / "site", Settings())
    before = {p.name: p.read_bytes() for p in good.path.iterdir() if p.is_file()}

    def describe(dataset: object, files: dict, settings: Settings, stamp: object) -> dict[str, Graph]:
        raise RuntimeError("catalog exploded")

    monkeypatch.setattr(catalog, "describe", describe)
    changed = tricky_dataset()
    changed.add((EX.d, RDF.type, EX.Thing))
    with pytest.raises(RuntimeError, match="exploded"):
        builder.write_release(changed, tmp_path / "site", Settings())
    assert Release.open(tmp_path / "site").path == good.path
    assert {p.name: p.read_bytes() for p in good.path.iterdir() if p.is_file()} == before
    leftovers = [p.name for p in (tmp_path / "site.releases").iterdir()]
    assert sorted(leftovers) == sorted([".lock", good.path.name])
