"""Claims: every quote is verbatim at its position, claims pass their shapes (and every shape
fires on a fixture), the seeds are covered, and the claims agree with the curated data."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyshacl
import pytest
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL, PROV, RDF, RDFS, SH

from conftest import ROOT, run_cli, shared_path
from twinning_kg.config import Settings
from twinning_kg.graph.materialise import materialise
from twinning_kg.sources import loading

SETTINGS = Settings()
BASE = SETTINGS.base_iri
TW = Namespace(f"{BASE}ontology#")
OA = Namespace("http://www.w3.org/ns/oa#")
ID = Namespace(f"{BASE}id/")
WD = Namespace("http://www.wikidata.org/entity/")
CLAIMS_DIR = ROOT / "data" / "claims"
SHAPES = ROOT / "shapes" / "claims.ttl"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "claims"
VERDICT = {name: ID[f"verdict/{name}"] for name in ("supported", "contradicted", "unverified")}


@pytest.fixture(scope="module")
def loaded() -> loading.Loaded:
    """The sources as the build publishes them (shortcuts derived from the events)."""
    loaded = loading.load(SETTINGS)
    materialise(loaded.dataset, SETTINGS)
    return loaded


@pytest.fixture(scope="module")
def union(loaded: loading.Loaded) -> Graph:
    graph = Graph()
    for s, p, o, _ in loaded.dataset.quads():
        graph.add((s, p, o))
    return graph


@pytest.fixture(scope="module")
def claims() -> Graph:
    graph = Graph()
    for path in sorted(CLAIMS_DIR.glob("*.ttl")):
        graph.parse(path, format="turtle", publicID=BASE)
    return graph


def table() -> list[dict[str, str]]:
    """The rows of data/claims/claims.csv, a translation's empty cells taken from its original
    (tools/generate_claims.py's rule): what the generated Turtle must hold, row for row."""
    with (CLAIMS_DIR / "claims.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    originals = {(r["source"], r["n"]): r for r in rows if not r["counterpart"]}
    return [
        {**row, **{k: v or originals[("seed-de", row["counterpart"])][k] for k, v in row.items()}}
        if row["counterpart"]
        else row
        for row in rows
    ]


def texts() -> dict[str, str]:
    """source id -> the text its claims quote (skips when ../shared is absent)."""
    out = {}
    with (CLAIMS_DIR / "texts.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["source_id"]] = shared_path(*row["path"].split("/")).open(encoding="utf-8").read()
    return out


def claim_parts(graph: Graph, claim: URIRef) -> dict:
    target = graph.value(claim, OA.hasTarget)
    selectors = list(graph.objects(target, OA.hasSelector))
    quote = next(s for s in selectors if (s, RDF.type, OA.TextQuoteSelector) in graph)
    position = next(s for s in selectors if (s, RDF.type, OA.TextPositionSelector) in graph)
    return {
        "source": graph.value(target, OA.hasSource),
        "exact": str(graph.value(quote, OA.exact)),
        "prefix": str(graph.value(quote, OA.prefix) or ""),
        "suffix": str(graph.value(quote, OA.suffix) or ""),
        "start": int(graph.value(position, OA.start)),
        "end": int(graph.value(position, OA.end)),
    }


def test_claims_exist_for_both_seeds_and_the_crawl(claims: Graph) -> None:
    by_source: dict[str, int] = {}
    for claim in claims.subjects(RDF.type, TW.Claim):
        source = str(claims.value(claim, PROV.wasDerivedFrom)).rsplit("/", 1)[-1]
        by_source[source] = by_source.get(source, 0) + 1
        assert str(claim).startswith(f"{BASE}id/claim/{source}/"), claim
    expected = Counter(row["source"] for row in table())
    assert by_source == expected
    assert set(expected) == {"seed-de", "seed-en", "wikidata-p190-2016"}


def test_every_quote_is_verbatim_at_its_position(claims: Graph) -> None:
    """No quote drifts from its source: text[start:end] == exact, prefix and suffix around it,
    and never more than twelve words verbatim (prefix + exact + suffix)."""
    text_of = texts()
    checked = 0
    for claim in sorted(claims.subjects(RDF.type, TW.Claim)):
        part = claim_parts(claims, claim)
        text = text_of[str(part["source"]).rsplit("/", 1)[-1]]
        start, end = part["start"], part["end"]
        assert text[start:end] == part["exact"], f"{claim}: quote not at {start}-{end}"
        assert text[start - len(part["prefix"]) : start] == part["prefix"], f"{claim}: prefix"
        assert text[end : end + len(part["suffix"])] == part["suffix"], f"{claim}: suffix"
        verbatim = part["prefix"] + part["exact"] + part["suffix"]
        assert len(verbatim.split()) <= 12, f"{claim}: more than twelve words quoted"
        checked += 1
    assert checked == len(table())


def test_generated_turtle_matches_the_table(tmp_path: Path) -> None:
    """data/claims/*.ttl is what tools/generate_claims.py makes of claims.csv (no hand edits)."""
    shared = shared_path()
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "generate_claims.py"),
            "--shared",
            str(shared),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    generated = sorted(p.name for p in tmp_path.glob("*.ttl"))
    # one file per source of the table, and no committed file the table does not make
    assert generated == sorted(f"{source}.ttl" for source in {row["source"] for row in table()})
    assert generated == sorted(p.name for p in CLAIMS_DIR.glob("*.ttl"))
    for name in generated:
        same = (tmp_path / name).read_bytes() == (CLAIMS_DIR / name).read_bytes()
        assert same, f"{name} differs from the table"


def test_claims_conform_to_their_shapes(union: Graph) -> None:
    shapes = Graph().parse(SHAPES, format="turtle", publicID=BASE)
    conforms, _, text = pyshacl.validate(union, shacl_graph=shapes)
    assert conforms, text


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.ttl")), ids=lambda p: p.stem)
def test_each_claim_shape_fires_on_its_fixture(fixture: Path) -> None:
    shapes = Graph().parse(SHAPES, format="turtle", publicID=BASE)
    data = Graph().parse(fixture, format="turtle", publicID=BASE)
    conforms, report, text = pyshacl.validate(data, shacl_graph=shapes)
    header = fixture.read_text(encoding="utf-8").splitlines()[0]
    match = re.match(r"# fires: tws:(\w+)", header)
    if match is None:
        assert conforms, f"{fixture.name} should conform:\n{text}"
        return
    expected = URIRef(f"{BASE}shapes#{match.group(1)}")
    assert not conforms
    fired = set(report.objects(None, SH.sourceShape)) | set(report.objects(None, SH.sourceConstraint))
    assert expected in fired, f"{fixture.name}: {expected} did not fire:\n{text}"
    messages = {m.language for m in shapes.objects(expected, SH.message)}
    assert {"de", "en"} <= messages, f"{expected}: messages in German and English"


def test_every_shape_has_a_firing_fixture() -> None:
    shapes = Graph().parse(SHAPES, format="turtle", publicID=BASE)
    named = {
        str(s).split("#", 1)[1]
        for s in set(shapes.subjects(SH.path, None))
        | set(shapes.subjects(RDF.type, SH.NodeShape))
        | set(shapes.subjects(RDF.type, SH.SPARQLConstraint))
        if isinstance(s, URIRef)
    }
    # node shapes that only group property shapes fire through those
    named -= {"ClaimShape", "TargetShape", "QuoteShape", "PositionShape", "EvidenceShape"}
    covered = {
        m.group(1)
        for f in FIXTURES.glob("*.ttl")
        if (m := re.match(r"# fires: tws:(\w+)", f.read_text(encoding="utf-8")))
    }
    assert named <= covered, f"shapes without a firing fixture: {sorted(named - covered)}"


# ------------------------------------------------------------------ coverage of the seeds

SEED_TOPICS = [  # (subject under id/, property) that both seeds must have a claim for
    ("place/kassel", TW.partnerCount),
    ("place/kassel", TW.partnerRegion),
    *[
        (f"partnership/kassel--{key}", TW.partner)
        for key in (
            "florence",
            "mulhouse",
            "rovaniemi",
            "vasteras",
            "yaroslavl",
            "izmit",
            "ramat-gan",
            "arnstadt",
            "berlin-mitte",
        )
    ],
    ("partnership/kassel--florence", TW.startDate),
    ("partnership/kassel--rovaniemi", TW.startDate),
    ("partnership/kassel--arnstadt", TW.startDate),
    ("partnership/kassel--vasteras", TW.startDate),
    ("partnership/kassel--yaroslavl", TW.startDate),
    ("partnership/kassel--vasteras", TW.focus),
    ("partnership/kassel--yaroslavl", TW.status),
    ("partnership/kassel--yaroslavl", TW.occasion),
    ("partnership/kassel--yaroslavl", TW.activity),
    ("place/rovaniemi", TW.capitalOf),
    ("place/rovaniemi", URIRef("https://schema.org/population")),
    ("place/ramat-gan", URIRef("https://schema.org/population")),
    ("place/berlin-mitte", TW.areaHectares),
    ("place/berlin-mitte", TW.greenSpaceShare),
    ("focus/earthquake-aid-1999", URIRef("http://www.wikidata.org/prop/direct/P1120")),
]


def statements(graph: Graph, source: str) -> dict[tuple[URIRef, URIRef], list[URIRef]]:
    out: dict[tuple[URIRef, URIRef], list[URIRef]] = {}
    for claim in graph.subjects(PROV.wasDerivedFrom, ID[f"source/{source}"]):
        if (claim, RDF.type, TW.Claim) in graph:
            key = (graph.value(claim, TW.claimSubject), graph.value(claim, TW.claimProperty))
            out.setdefault(key, []).append(claim)
    return out


@pytest.mark.parametrize("source", ["seed-de", "seed-en"])
def test_each_seed_is_covered(claims: Graph, source: str) -> None:
    made = statements(claims, source)
    missing = [(s, str(p)) for s, p in SEED_TOPICS if (ID[s], p) not in made]
    assert not missing, f"{source} lacks claims for {missing}"
    deaths = made[(ID["focus/earthquake-aid-1999"], URIRef("http://www.wikidata.org/prop/direct/P1120"))]
    assert claims.value(deaths[0], TW.claimValue) == Literal(18373)
    count = made[(ID["place/kassel"], TW.partnerCount)]
    assert claims.value(count[0], TW.claimValue) == Literal(8)
    assert claims.value(count[0], TW.verdict) == VERDICT["contradicted"]


def test_izmit_mistranslation_is_an_english_only_finding(claims: Graph) -> None:
    en = statements(claims, "seed-en").get((ID["place/izmit"], URIRef("https://schema.org/foundingDate")))
    de = statements(claims, "seed-de").get((ID["place/izmit"], URIRef("https://schema.org/foundingDate")))
    assert en and not de
    assert claims.value(en[0], TW.verdict) == VERDICT["contradicted"]
    original = claims.value(en[0], TW.translationOf)
    assert claims.value(original, TW.claimProperty) == TW.focus
    assert claims.value(original, TW.verdict) == VERDICT["supported"]


def test_montana_is_an_unverified_claim_never_a_partnership(claims: Graph, union: Graph) -> None:
    montana = WD.Q220121
    crawl = [
        c
        for c in claims.subjects(PROV.wasDerivedFrom, ID["source/wikidata-p190-2016"])
        if montana in (claims.value(c, TW.claimSubject), claims.value(c, TW.claimValue))
    ]
    assert len(crawl) == 2, "both directions of the crawl"
    assert all(claims.value(c, TW.verdict) == VERDICT["unverified"] for c in crawl)
    montana_places = {s for s in union.subjects(OWL.sameAs, montana)} | {montana}
    for partnership in union.subjects(RDF.type, TW.Partnership):
        partners = set(union.objects(partnership, TW.partner))
        assert not partners & montana_places, f"{partnership} makes Montana a partner"


def test_claims_agree_with_the_curated_graph(claims: Graph, loaded: loading.Loaded) -> None:
    """Where the curated graph holds the fact, a claim's trusted value is that fact and its
    evidence includes the fact's own source: claims and data cannot drift apart."""
    curated = loaded.dataset.graph(URIRef(f"{BASE}graph/kassel"))
    per_fact_source = {TW.startDate: TW.startSource, TW.status: TW.statusSource}
    facts = ("startDate", "status", "focus", "partner", "country")
    checked = 0
    for claim in claims.subjects(RDF.type, TW.Claim):
        subject, prop = claims.value(claim, TW.claimSubject), claims.value(claim, TW.claimProperty)
        trusted = claims.value(claims.value(claim, TW.evidence), TW.trustedValue)
        if trusted is None or prop not in [TW[name] for name in facts]:
            continue
        held = set(curated.objects(subject, prop))
        assert trusted in held, f"{claim}: trusted {trusted} but the data says {held}"
        if prop in per_fact_source:
            evidence_sources = set(claims.objects(claims.value(claim, TW.evidence), PROV.wasDerivedFrom))
            fact_sources = set(curated.objects(subject, per_fact_source[prop]))
            assert fact_sources & evidence_sources, (
                f"{claim}: evidence lacks the fact's source {fact_sources}"
            )
        checked += 1
    # every claim of the table on one of these facts that names a trusted value was checked
    # (the country claims name none: no source we hold states a country)
    expected = [r for r in table() if r["trusted"] and r["property"] in [f"tw:{name}" for name in facts]]
    assert expected and checked == len(expected)


def test_labels_and_notes_paraphrase_not_copy(claims: Graph) -> None:
    """Only oa:exact quotes the articles: labels, notes and trusted values are our words
    (no run of five words taken from a seed), so no claim quotes more than twelve words."""
    seeds = [t for source, t in texts().items() if source.startswith("seed-")]
    for claim in claims.subjects(RDF.type, TW.Claim):
        evidence = claims.value(claim, TW.evidence)
        ours = [
            *claims.objects(claim, RDFS.label),
            *claims.objects(evidence, RDFS.comment),
            *claims.objects(evidence, TW.trustedValue),
        ]
        for text in ours:
            words = str(text).split()
            for i in range(len(words) - 4):
                run = " ".join(words[i : i + 5])
                assert not any(run in seed for seed in seeds), f"{claim}: {run!r} is copied from a seed"


def test_docs_worked_example_is_the_data(union: Graph) -> None:
    """The Västerås example of docs/claims.md is quoted from the data, triple for triple."""
    doc = (ROOT / "docs" / "claims.md").read_text(encoding="utf-8")
    section = doc[doc.index("\n## Worked example") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```turtle\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2
    prefixes = "".join(
        f"@prefix {p}: <{ns}> .\n"
        for p, ns in {
            "tw": "ontology#",
            "partnership": "id/partnership/",
            "source": "id/source/",
            "precision": "id/precision/",
            "verdict": "id/verdict/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
            "prov": "http://www.w3.org/ns/prov#",
            "oa": "http://www.w3.org/ns/oa#",
        }.items()
    )
    for block in blocks:
        example = Graph().parse(data=prefixes + block, format="turtle", publicID=BASE)
        missing = [t for t in example if t not in union]
        assert len(example) >= 3 and not missing, f"docs/claims.md example not in the data: {missing}"


def test_the_validate_command_rejects_a_bad_claim(tmp_path: Path) -> None:
    """The project's `validate` runs these shapes too: a claim without evidence fails the build."""
    home = tmp_path / "home"
    for part in ("ontology", "shapes", "data/kassel", "data/claims"):
        shutil.copytree(ROOT / part, home / part, ignore=shutil.ignore_patterns("*.csv"))
    shutil.copy(FIXTURES / "13-evidence-required.ttl", home / "data" / "claims" / "bad.ttl")
    proc = run_cli("validate", env={**os.environ, "TWINNING_KG_HOME": str(home)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "EvidenceRequiredShape" in proc.stdout + proc.stderr
