"""Issue 4: imports into our model (Wikidata crawl, contributor CSV, WDQS JSON).

The real crawl from ../shared is imported once per session by the real CLI (`world`
fixture in conftest); the expectations are computed from the TSV files here, not copied
from the importer, so a wrong reconciliation or count fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest
from rdflib import Literal, URIRef
from rdflib.namespace import RDF, SH

from conftest import FIXTURES, ServerProcess, run_cli, shared_path
from twinning_kg.checks import world_validation
from twinning_kg.checks.validation import load_shapes, union_graph, validate
from twinning_kg.config import Settings
from twinning_kg.sources.loading import load

BASE = Settings().base_iri
TW = f"{BASE}ontology#"
ID = f"{BASE}id/"
WORLD_GRAPH = f"{BASE}graph/wikidata-p190-2016"
PREFIXES = f"""PREFIX tw: <{TW}> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX prov: <http://www.w3.org/ns/prov#> PREFIX owl: <http://www.w3.org/2002/07/owl#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""
IMPORT_FIXTURES = FIXTURES / "import"
NON_NEGATIVE = URIRef("http://www.w3.org/2001/XMLSchema#nonNegativeInteger")

WEIMAR_PARTNERS = f"""{PREFIXES}
SELECT ?label WHERE {{ <{ID}place/Q3955> tw:twinnedWith ?partner . ?partner rdfs:label ?label }}
ORDER BY ?label"""
MOST_TWINNED = f"""{PREFIXES}
SELECT ?place (COUNT(DISTINCT ?p) AS ?n) WHERE {{ ?p a tw:Partnership ; tw:partner ?place }}
GROUP BY ?place ORDER BY DESC(?n) ?place LIMIT 10"""
ONE_WAY = f"""{PREFIXES}
SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE {{ ?p a tw:Partnership ; tw:oneWay true }}"""


# --------------------------------------------------------------------------- expectations


def crawl() -> tuple[set[tuple[str, str]], dict[str, str]]:
    """(directed statements, names) straight from the shared TSV files."""
    folder = shared_path("data", "wikidata-p190-2016")
    rows = {tuple(line.split("\t")) for line in (folder / "relations.tsv").read_text().splitlines() if line}
    names = dict(line.split("\t") for line in (folder / "names.tsv").read_text().splitlines() if line)
    return rows, names


def pairs_of(rows: set[tuple[str, str]]) -> set[frozenset[str]]:
    return {frozenset(r) for r in rows if r[0] != r[1]}


def select(store: ox.Store, query: str) -> list[dict[str, str]]:
    solutions = store.query(query, use_default_graph_as_union=True)
    return [
        {v.value: (s[v].value if s[v] is not None else None) for v in solutions.variables} for s in solutions
    ]


@pytest.fixture(scope="module")
def world_store(world: Path) -> ox.Store:
    return ox.Store.read_only(str(world / "store"))


def curated_qids(store: ox.Store) -> dict[str, str]:
    """QID -> curated place IRI, read from the curated graph of the release."""
    rows = select(
        store,
        f"""{PREFIXES} SELECT ?place ?wd WHERE {{
        GRAPH <{BASE}graph/kassel> {{ ?place owl:sameAs ?wd }}
        FILTER STRSTARTS(STR(?wd), "http://www.wikidata.org/entity/") }}""",
    )
    return {r["wd"].rsplit("/", 1)[1]: r["place"] for r in rows}


# --------------------------------------------------------------------------- the real crawl


def summary_table(log: str) -> dict[str, str]:
    """The importer's summary table (`│ label │ value │` lines) as label -> value."""
    cells = (line.strip("│ ").split("│") for line in log.splitlines() if line.startswith("│"))
    return {label.strip(): value.strip() for label, value in cells}


def test_world_import_conforms_and_reports(world: Path) -> None:
    log = (world.parent / "import.log").read_text()
    table = summary_table(log)
    relations = shared_path("data", "wikidata-p190-2016", "relations.tsv").read_text()
    lines = [line for line in relations.splitlines() if line]
    assert all(re.fullmatch(r"Q\d+\tQ\d+", line) for line in lines)
    rows, _names = crawl()
    numbers = {
        label: int(value.replace(",", ""))
        for label, value in table.items()
        if re.fullmatch(r"[\d,]+", value)
    }
    assert numbers["input rows"] == len(lines)
    assert numbers["note: duplicate directed statement (counted once)"] == len(lines) - len(rows) > 0
    assert numbers["pairs (unordered)"] == len(pairs_of(rows))
    assert numbers["places"] == len({qid for row in rows for qid in row})
    assert numbers["new partnerships"] + numbers["already curated (curated wins)"] == len(pairs_of(rows))
    assert numbers["new places"] + numbers["reconciled with curated (by QID)"] == numbers["places"]
    assert numbers["skipped rows"] == 0  # every line of the crawl is two QIDs
    assert table["SHACL"] == "conforms (pyshacl-turbo)"
    assert "NOT checked" not in log
    manifest = json.loads((world / "manifest.json").read_text())
    assert WORLD_GRAPH in manifest["graphs"] and f"{BASE}graph/kassel" in manifest["graphs"]
    for name in ("twinning-kg.nt", "twinning-kg.nq", "twinning-kg.ttl", "store"):
        assert (world / name).exists(), name


def test_world_release_checksums_verify(world: Path) -> None:
    """SHA256SUMS and the manifest of the world release, whose dumps span many read chunks
    (the Kassel ones fit in one), against sha256sum and hashlib over each whole file."""
    manifest = json.loads((world / "manifest.json").read_text())
    big = [name for name, info in manifest["files"].items() if info["bytes"] > 4 * 1024 * 1024]
    assert "twinning-kg.nq" in big, "the world dumps should be large: the test would prove little"
    proc = subprocess.run(
        ["sha256sum", "-c", "--strict", "SHA256SUMS"], cwd=world, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # every file the manifest lists but SHA256SUMS itself, which cannot hold its own sum
    assert proc.stdout.count(": OK") == len(manifest["files"]) - 1
    for name in big:
        digest = hashlib.sha256((world / name).read_bytes()).hexdigest()
        assert manifest["files"][name]["sha256"] == digest, name


def test_one_place_per_qid_reconciled_with_curated(world_store: ox.Store) -> None:
    rows, names = crawl()
    curated = curated_qids(world_store)
    places = select(
        world_store,
        f"""{PREFIXES} SELECT ?place ?wd WHERE {{
        ?place a/rdfs:subClassOf* tw:Place ; owl:sameAs ?wd
        FILTER STRSTARTS(STR(?wd), "http://www.wikidata.org/entity/") }}""",
    )
    by_qid = Counter(r["wd"].rsplit("/", 1)[1] for r in places)
    assert set(names) <= set(by_qid)
    assert all(by_qid[q] == 1 for q in names), "a QID became two places"
    for row in places:
        qid = row["wd"].rsplit("/", 1)[1]
        expected = curated.get(qid, f"{ID}place/{qid}")
        assert row["place"] == expected
    assert f"{ID}place/kassel" == curated["Q2865"]
    # labels without a language tag, as the crawl gives them
    labels = list(
        world_store.quads_for_pattern(
            ox.NamedNode(f"{ID}place/Q3955"), ox.NamedNode("http://www.w3.org/2000/01/rdf-schema#label"), None
        )
    )
    assert [(q.object.value, q.object.language) for q in labels] == [("Weimar", None)]


def test_one_partnership_per_unordered_pair_curated_wins(world_store: ox.Store) -> None:
    rows, _ = crawl()
    pairs = pairs_of(rows)
    curated = curated_qids(world_store)
    kassel_pairs = select(
        world_store,
        f"""{PREFIXES} SELECT ?a ?b WHERE {{ GRAPH <{BASE}graph/kassel> {{
        ?p a tw:Partnership ; tw:partner ?a, ?b FILTER (STR(?a) < STR(?b)) }} }}""",
    )
    place_to_qid = {iri: qid for qid, iri in curated.items()}
    curated_pairs = {frozenset((place_to_qid.get(r["a"]), place_to_qid.get(r["b"]))) for r in kassel_pairs}
    wins = pairs & curated_pairs
    assert len(wins) >= 9  # Kassel's nine partners are all in the crawl
    imported = select(
        world_store, f"""{PREFIXES} SELECT ?p WHERE {{ GRAPH <{WORLD_GRAPH}> {{ ?p a tw:Partnership }} }}"""
    )
    assert len(imported) == len(pairs) - len(wins)
    iris = {r["p"] for r in imported}
    for pair in pairs - wins:
        a, b = sorted(pair, key=lambda q: int(q[1:]))
        assert f"{ID}partnership/{a}--{b}" in iris
    for pair in wins:
        a, b = sorted(pair, key=lambda q: int(q[1:]))
        assert f"{ID}partnership/{a}--{b}" not in iris
    # curated wins: Kassel-Västerås keeps its curated start (Wikidata says 1958)
    start = select(
        world_store,
        f"""{PREFIXES} SELECT ?start WHERE {{ <{ID}partnership/kassel--vasteras> tw:startDate ?start }}""",
    )
    assert [r["start"] for r in start] == ["1972-08-14"]
    # and the import adds nothing about Kassel itself except the materialised shortcut
    said = select(
        world_store,
        f"""SELECT DISTINCT ?p WHERE {{ GRAPH <{WORLD_GRAPH}> {{ <{ID}place/kassel> ?p ?o }} }}""",
    )
    assert {r["p"] for r in said} == {f"{TW}twinnedWith"}


def test_every_imported_partnership_is_sourced_to_the_crawl(world_store: ox.Store) -> None:
    rows = select(
        world_store,
        f"""{PREFIXES} SELECT ?source (COUNT(?p) AS ?n) WHERE {{ GRAPH <{WORLD_GRAPH}> {{
        ?p a tw:Partnership ; prov:wasDerivedFrom ?source ; tw:kind <{ID}kind/town-twinning> }} }}
        GROUP BY ?source""",
    )
    assert [r["source"] for r in rows] == [f"{ID}source/wikidata-p190-2016"]


def test_montana_stays_the_crawls_claim(world_store: ox.Store, site: Path) -> None:
    """The crawl states Kassel–Montana both ways; no Kassel source does (facts: unconfirmed)."""
    facts = select(
        world_store, f"""SELECT ?g ?p ?o WHERE {{ GRAPH ?g {{ <{ID}partnership/Q2865--Q220121> ?p ?o }} }}"""
    )
    assert {r["g"] for r in facts} == {WORLD_GRAPH}
    said = {(r["p"], r["o"]) for r in facts}
    assert (f"{TW}partner", f"{ID}place/kassel") in said and (f"{TW}partner", f"{ID}place/Q220121") in said
    assert {o for p, o in said if p == "http://www.w3.org/ns/prov#wasDerivedFrom"} == {
        f"{ID}source/wikidata-p190-2016"
    }
    assert not any(p in (f"{TW}status", f"{TW}oneWay", f"{TW}startDate") for p, _ in said)
    # Kassel's default graph (the default build) has no such partnership
    kassel = ox.Store.read_only(str(site / "store"))
    assert not select(
        kassel,
        f"""{PREFIXES} SELECT ?p WHERE {{ ?p a tw:Partnership ; tw:partner ?m .
        ?m owl:sameAs <http://www.wikidata.org/entity/Q220121> }}""",
    )
    assert not select(kassel, f"""{PREFIXES} SELECT ?p WHERE {{ ?p tw:partner <{ID}place/Q220121> }}""")


def test_sparql_answers_weimar_most_twinned_and_one_way(world_store: ox.Store) -> None:
    rows, names = crawl()
    pairs = pairs_of(rows)
    weimar = sorted(names[q] for pair in pairs if "Q3955" in pair for q in pair - {"Q3955"})
    assert [r["label"] for r in select(world_store, WEIMAR_PARTNERS)] == weimar
    assert weimar == ["Blois", "Hämeenlinna", "Siena", "Trier", "Zamość"]

    degree = Counter(q for pair in pairs for q in pair)
    top = select(world_store, MOST_TWINNED)
    curated = {iri: qid for qid, iri in curated_qids(world_store).items()}
    first = top[0]
    qid = curated.get(first["place"]) or first["place"].rsplit("/", 1)[1]
    assert int(first["n"]) == max(degree.values()) == degree[qid]

    one_way = {p for p in pairs if tuple(p) not in rows or tuple(reversed(tuple(p))) not in rows}
    assert int(select(world_store, ONE_WAY)[0]["n"]) == len(one_way) == 624
    a, b = sorted(next(iter(sorted(one_way, key=sorted))), key=lambda q: int(q[1:]))
    flagged = select(
        world_store, f"""{PREFIXES} SELECT ?w WHERE {{ <{ID}partnership/{a}--{b}> tw:oneWay ?w }}"""
    )
    assert flagged == [{"w": "true"}]


def test_world_release_is_served(world: Path, tmp_path: Path) -> None:
    """`serve --graph DIR` serves the world release: the same answers over HTTP."""
    server = ServerProcess(["--graph", str(world)]).start(tmp_path)
    try:
        response = httpx.get(
            f"{server.url}/sparql",
            params={"query": WEIMAR_PARTNERS},
            headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        labels = [b["label"]["value"] for b in response.json()["results"]["bindings"]]
        assert labels == ["Blois", "Hämeenlinna", "Siena", "Trier", "Zamość"]
        response = httpx.get(
            f"{server.url}/sparql",
            params={"query": ONE_WAY},
            headers={"Accept": "application/sparql-results+json"},
            timeout=30,
        )
        assert response.json()["results"]["bindings"][0]["n"]["value"] == "624"
    finally:
        server.stop()


# --------------------------------------------------------------------------- SHACL engines


def _results(graph) -> set[tuple]:  # noqa: ANN001 - an rdflib results graph
    """Comparable results: blank nodes (anonymous shapes, property paths) as a marker."""

    def show(term):  # noqa: ANN001, ANN202
        return None if term is None else ("_:b" if not isinstance(term, (URIRef, Literal)) else str(term))

    return {
        (
            show(graph.value(r, SH.focusNode)),
            show(graph.value(r, SH.resultPath)),
            show(graph.value(r, SH.sourceConstraintComponent)),
            show(graph.value(r, SH.sourceShape)),
            show(graph.value(r, SH.value)),
            show(graph.value(r, SH.resultSeverity)),
        )
        for r in graph.subjects(RDF.type, SH.ValidationResult)
    }


def test_fast_shacl_engine_gives_pyshacls_report_where_every_shape_fires() -> None:
    """pyshacl-turbo, fed as the import feeds it, reports what pyshacl (the reference) reports."""
    import pyshacl

    settings = Settings()
    fixtures = sorted((FIXTURES / "shapes").glob("*.ttl"))
    assert fixtures, "tests/fixtures/shapes/ holds a fixture per shape"
    loaded = load(settings, extra=[(path, "fixtures") for path in fixtures])
    shapes = load_shapes(settings)
    reference = pyshacl.validate(union_graph(loaded), shacl_graph=shapes, **world_validation.SHACL_OPTIONS)
    fast = world_validation.fast_results(loaded, shapes)
    assert fast is not None, "pyshacl-turbo is a dependency (pyproject.toml)"
    assert reference[0] is False and fast[0] is False
    expected = _results(reference[1])
    assert len(expected) >= len(fixtures)  # every fixture fires at least once
    assert _results(fast[1]) == expected


def test_fast_shacl_engine_sees_datatypes_as_written() -> None:
    """xsd:nonNegativeInteger reaches the fast engine as written (an Oxigraph Store would
    make it xsd:integer and the claims' position shapes would fire): same verdict as pyshacl."""
    settings = Settings()
    loaded = load(settings)
    typed = [
        o for _, _, o, _ in loaded.dataset.quads() if isinstance(o, Literal) and o.datatype == NON_NEGATIVE
    ]
    assert typed, "the data holds no xsd:nonNegativeInteger value (the claims' positions): nothing to check"
    fast = world_validation.fast_results(loaded, load_shapes(settings))
    assert fast is not None and fast[0] == validate(loaded, settings).conforms


# --------------------------------------------------------------------------- small crawl, CSV, WDQS


def _import(tmp_path: Path, *args: str) -> tuple[object, Path]:
    out = tmp_path / "out"
    proc = run_cli("import", *args, "--out", str(out), env={**os.environ, "COLUMNS": "200"})
    return proc, out


def test_crawl_rows_that_cannot_be_imported_are_counted(tmp_path: Path) -> None:
    proc, out = _import(
        tmp_path,
        "wikidata-p190",
        str(IMPORT_FIXTURES / "crawl-relations.tsv"),
        str(IMPORT_FIXTURES / "crawl-names.tsv"),
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stderr
    for line in ("self-loop", "malformed QID", "without exactly two columns", "duplicate directed statement"):
        assert line in text
    assert "crawl-relations.tsv:4" in text and "crawl-relations.tsv:5" in text
    store = ox.Store.read_only(str(out / "store"))
    iris = {
        r["p"]
        for r in select(
            store, f"{PREFIXES} SELECT ?p WHERE {{ GRAPH <{WORLD_GRAPH}> {{ ?p a tw:Partnership }} }}"
        )
    }
    assert iris == {
        f"{ID}partnership/Q64--Q90",
        f"{ID}partnership/Q2751--Q3955",
        f"{ID}partnership/Q3138--Q3955",
    }
    one_way = {r["p"] for r in select(store, f"{PREFIXES} SELECT ?p WHERE {{ ?p tw:oneWay true }}")}
    assert one_way == {f"{ID}partnership/Q64--Q90", f"{ID}partnership/Q2751--Q3955"}
    # a place the names file does not name is labelled with its QID rather than left unlabelled
    label = select(store, f"{PREFIXES} SELECT ?l WHERE {{ <{ID}place/Q2751> rdfs:label ?l }}")
    assert label == [{"l": "Q2751"}]


def test_imports_are_deterministic(tmp_path: Path) -> None:
    args = (
        "wikidata-p190",
        str(IMPORT_FIXTURES / "crawl-relations.tsv"),
        str(IMPORT_FIXTURES / "crawl-names.tsv"),
    )
    first, out1 = _import(tmp_path / "one", *args)
    second, out2 = _import(tmp_path / "two", *args)
    assert first.returncode == second.returncode == 0
    assert (out1 / "twinning-kg.nq").read_bytes() == (out2 / "twinning-kg.nq").read_bytes()
    assert (
        json.loads((out1 / "manifest.json").read_text())["version"]
        == json.loads((out2 / "manifest.json").read_text())["version"]
    )


def test_csv_import_of_the_template_model(tmp_path: Path) -> None:
    proc, out = _import(tmp_path, "csv", str(IMPORT_FIXTURES / "weimar-partnerships.csv"))
    assert proc.returncode == 0, proc.stderr
    store = ox.Store.read_only(str(out / "store"))
    graph = f"{BASE}graph/contrib-weimar-partnerships"

    def facts(iri: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for r in select(store, f"SELECT ?p ?o WHERE {{ GRAPH <{graph}> {{ <{iri}> ?p ?o }} }}"):
            found.setdefault(r["p"].split("#")[-1].rsplit("/", 1)[-1], set()).add(r["o"])
        return found

    trier = facts(f"{ID}partnership/Q3138--Q3955")
    assert trier["kind"] == {f"{ID}kind/town-twinning"} and trier["status"] == {f"{ID}status/active"}
    assert trier["startDate"] == {"1987"} and trier["startPrecision"] == {f"{ID}precision/year"}
    assert trier["wasDerivedFrom"] == {f"{ID}source/test-contrib"} and "oneWay" not in trier
    siena = facts(f"{ID}partnership/Q2751--Q3955")
    assert siena["kind"] == {f"{ID}kind/town-friendship"} and siena["startPrecision"] == {
        f"{ID}precision/month"
    }
    montana = facts(f"{ID}partnership/Q3955--Q220121")
    assert montana["endDate"] == {"2005"} and montana["statusSince"] == {"2005-01-01"}
    # the row's source is described in the model the shapes check
    source = facts(f"{ID}source/test-contrib")
    assert source["url"] == {"https://example.org/twinning-kg-test/weimar"}
    assert source["reliability"] == {f"{TW}Weak"} and source["language"] == {"en"}
    # Kassel–Florence is curated: the CSV row does not become a second partnership
    assert not facts(f"{ID}partnership/Q2044--Q2865")
    # labels keep their language; a curated place gets none from the CSV
    weimar = facts(f"{ID}place/Q3955")
    assert weimar["label"] == {"Weimar"} and "label" not in facts(f"{ID}place/kassel")
    typed = select(
        store,
        f"{PREFIXES} SELECT (LANG(?l) AS ?lang) WHERE {{ <{ID}place/Q3955> rdfs:label ?l }} ORDER BY ?lang",
    )
    assert [r["lang"] for r in typed] == ["de", "en"]


def test_the_template_itself_imports(tmp_path: Path) -> None:
    template = Path(__file__).resolve().parents[1] / "data" / "templates" / "partnerships-template.csv"
    proc, out = _import(tmp_path, "csv", str(template))
    assert proc.returncode == 0, proc.stderr
    assert "already curated (curated wins)" in proc.stderr


@pytest.mark.parametrize(
    ("fixture", "messages"),
    [
        (
            "contrib-broken.csv",
            [
                ":2: place_b_wikidata: 'Weimar' is not a Wikidata QID",
                ":3: start: date '1987-13'",
                ":4: a place cannot partner itself",
            ],
        ),
        ("contrib-unknown-kind.csv", [":2: unknown kind 'sister-city' (one of: city-cooperation"]),
        ("contrib-unlabelled.csv", [":2: place Q3138 is not curated and has no label"]),
    ],
)
def test_bad_csv_is_refused_with_line_and_nothing_written(
    tmp_path: Path, fixture: str, messages: list[str]
) -> None:
    proc, out = _import(tmp_path, "csv", str(IMPORT_FIXTURES / fixture))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "nothing was written" in proc.stderr
    for message in messages:
        assert f"{fixture}{message}" in proc.stderr
    assert not out.exists() and not (tmp_path / "out.releases").exists()


def test_wdqs_json_import_with_qualifiers_and_precision(tmp_path: Path) -> None:
    proc, out = _import(tmp_path, "wdqs-json", str(IMPORT_FIXTURES / "wdqs-p190.json"))
    assert proc.returncode == 0, proc.stderr
    assert "self-loop" in proc.stderr and "not a Wikidata entity" in proc.stderr
    store = ox.Store.read_only(str(out / "store"))
    graph = f"{BASE}graph/wikidata-p190-wdqs"

    def value(iri: str, prop: str) -> list[tuple[str, str | None]]:
        rows = store.query(f"SELECT ?o WHERE {{ GRAPH <{graph}> {{ <{iri}> <{TW}{prop}> ?o }} }}")
        return [
            (s["o"].value, getattr(s["o"], "datatype", None) and s["o"].datatype.value.rsplit("#", 1)[1])
            for s in rows
        ]

    trier = f"{ID}partnership/Q3138--Q3955"
    assert value(trier, "startDate") == [
        ("1987-10-03", "date")
    ]  # the day beats the year of the other direction
    assert value(trier, "startPrecision") == [(f"{ID}precision/day", None)]
    assert value(trier, "oneWay") == []
    siena = f"{ID}partnership/Q2751--Q3955"
    assert value(siena, "startDate") == [("1994-05", "gYearMonth")] and value(siena, "endDate") == [
        ("2010", "gYear")
    ]
    assert value(siena, "oneWay") == [("true", "boolean")]
    blois = f"{ID}partnership/Q3955--Q160927"
    assert value(blois, "startDate") == [("1990", "gYear")]  # the century was left out, the decade kept
    assert value(blois, "startPrecision") == [(f"{ID}precision/decade", None)]
    # curated wins: no imported Kassel–Västerås, the curated start stays
    assert value(f"{ID}partnership/Q2865--Q34550", "startDate") == []
    start = select(
        store, f"{PREFIXES} SELECT ?d WHERE {{ <{ID}partnership/kassel--vasteras> tw:startDate ?d }}"
    )
    assert start == [{"d": "1972-08-14"}]
    labels = select(
        store, f"{PREFIXES} SELECT ?l (LANG(?l) AS ?lang) WHERE {{ <{ID}place/Q2751> rdfs:label ?l }}"
    )
    assert labels == [{"l": "Siena", "lang": "it"}]
    assert select(store, f"{PREFIXES} SELECT ?l WHERE {{ <{ID}place/Q999999999> rdfs:label ?l }}") == [
        {"l": "Q999999999"}
    ]


def test_wdqs_json_that_is_not_a_result_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"head": {"vars": ["item"]}, "results": {"bindings": []}}')
    proc, out = _import(tmp_path, "wdqs-json", str(bad))
    assert proc.returncode == 1 and "needs variables ?city and ?twin" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_csv_that_breaks_the_shapes_gets_the_reference_report(tmp_path: Path) -> None:
    """Well-formed rows the shapes reject: pyshacl's report (as `build` prints it), nothing written."""
    proc, out = _import(tmp_path, "csv", str(IMPORT_FIXTURES / "contrib-shape-violation.csv"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "A source has exactly one language" in proc.stderr
    assert "The start (tw:startDate) is after the end (tw:endDate)." in proc.stderr
    assert "the data does not conform to the shapes; nothing was written" in proc.stderr
    assert not out.exists()
