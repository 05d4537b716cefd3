"""The ontology as OWL: its profile (checked by the OWL API), its hygiene, and what a real
OWL RL reasoner (owlrl) derives from the release, alone and merged with Wikidata's P190.

The profile claims of docs/model.md are tested here: the ontology document is in OWL 2 DL,
and the only constructs outside OWL 2 RL are the documented ones. The reasoner tests run
the OWL 2 RL/RDF rules over what `twinning-kg build` published.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import owlrl
import pytest
from owlrl.Namespaces import ERRNS
from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import OWL, RDF, RDFS, XSD

from conftest import shared_path
from twinning_kg.config import Settings
from twinning_kg.sources.loading import load

SETTINGS = Settings()
BASE = SETTINGS.base_iri
TW = Namespace(f"{BASE}ontology#")
ONTOLOGY = URIRef(f"{BASE}ontology")
WD = Namespace("http://www.wikidata.org/entity/")
WDT = Namespace("http://www.wikidata.org/prop/direct/")
KASSEL = URIRef(f"{BASE}id/place/kassel")
MONTANA = WD.Q220121
JAVA_DIR = Path("/usr/share/java")
PROFILE_PROGRAM = Path(__file__).resolve().parent / "owl" / "OwlProfile.java"


# --------------------------------------------------------------------------- the document


@pytest.fixture(scope="module")
def ontology() -> Graph:
    """The ontology graph as the build loads it and /ontology serves it."""
    graph = Graph()
    for triple in load(SETTINGS).dataset.graph(URIRef(f"{BASE}graph/ontology")):
        graph.add(triple)
    return graph


def test_every_term_is_defined_by_the_ontology(ontology: Graph) -> None:
    kinds = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.AnnotationProperty,
             OWL.NamedIndividual, RDFS.Datatype)
    ours = {s for k in kinds for s in ontology.subjects(RDF.type, k) if str(s).startswith(str(TW))}
    assert len(ours) > 60
    missing = sorted(str(t) for t in ours if (t, RDFS.isDefinedBy, ONTOLOGY) not in ontology)
    assert not missing


def test_version_iri_and_info_agree(ontology: Graph) -> None:
    info = ontology.value(ONTOLOGY, OWL.versionInfo)
    assert ontology.value(ONTOLOGY, OWL.versionIRI) == URIRef(f"{BASE}ontology/{info}")


def test_p190_mapping_is_one_way(ontology: Graph) -> None:
    assert (TW.twinnedWith, RDFS.subPropertyOf, WDT.P190) in ontology
    assert not list(ontology.triples((None, OWL.equivalentProperty, None)))
    assert (TW.twinnedWith, RDF.type, OWL.SymmetricProperty) in ontology
    assert (WDT.P190, RDF.type, OWL.SymmetricProperty) not in ontology


# --------------------------------------------------------------------------- OWL 2 profiles


def owl_profiles(graph: Graph, tmp_path: Path) -> dict[str, list[tuple[str, str]]]:
    """{profile: [(violation class, text)]} from the OWL API's profile checkers."""
    jars = sorted(JAVA_DIR.glob("*.jar"))
    path = tmp_path / "ontology.ttl"
    graph.serialize(path, format="turtle")
    proc = subprocess.run(
        ["java", "-cp", ":".join(str(j) for j in jars), str(PROFILE_PROGRAM), str(path)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: dict[str, list[tuple[str, str]]] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("PROFILE "):
            found.setdefault(line.split()[1], [])
        elif line.startswith("VIOLATION "):
            _, profile, kind, text = line.split(" ", 3)
            found[profile].append((kind, text))
    assert set(found) == {"OWL2_DL", "OWL2_RL", "OWL2_EL", "OWL2_QL"}, proc.stdout[-2000:]
    return found


@pytest.mark.owlapi
def test_ontology_is_owl2_dl_and_outside_rl_only_where_documented(ontology: Graph, tmp_path: Path) -> None:
    profiles = owl_profiles(ontology, tmp_path)
    assert profiles["OWL2_DL"] == []
    rl = profiles["OWL2_RL"]
    assert rl, "docs/model.md says the ontology is not in OWL 2 RL"
    ranges = {text.split(":", 1)[1].split("[", 1)[0].strip() for kind, text in rl
              if kind == "UseOfIllegalDataRange"}
    assert ranges == {f"<{TW.CalendarValue}>", "rdf:langString"}
    others = [(kind, text) for kind, text in rl if kind != "UseOfIllegalDataRange"]
    assert len(others) == 1 and "ObjectOneOf" in others[0][1] and str(TW.Reliability) in others[0][1]


@pytest.mark.owlapi
def test_a_datatype_union_of_xsd_dates_would_leave_owl2_dl(ontology: Graph, tmp_path: Path) -> None:
    """Why tw:CalendarValue is only declared: the union the comments describe is not OWL 2 DL."""
    union = Graph()
    union += ontology
    members = union.collection(URIRef(f"{BASE}id/fixture/members"))
    members += [XSD.date, XSD.gYearMonth, XSD.gYear]
    union.add((TW.CalendarValue, OWL.equivalentClass, URIRef(f"{BASE}id/fixture/union")))
    union.add((URIRef(f"{BASE}id/fixture/union"), RDF.type, RDFS.Datatype))
    union.add((URIRef(f"{BASE}id/fixture/union"), OWL.unionOf, URIRef(f"{BASE}id/fixture/members")))
    dl = owl_profiles(union, tmp_path)["OWL2_DL"]
    assert any("xsd:date" in text or str(XSD.date) in text for _, text in dl), dl


# --------------------------------------------------------------------------- OWL RL reasoning


def closure(*graphs: Graph) -> Graph:
    """The OWL 2 RL/RDF closure (owlrl) of the union of `graphs`."""
    merged = Graph()
    for graph in graphs:
        merged += graph
    owlrl.DeductiveClosure(
        owlrl.OWLRL_Semantics, rdfs_closure=False, axiomatic_triples=False, datatype_axioms=False
    ).expand(merged)
    return merged


@pytest.fixture(scope="module")
def release(site: Path) -> Graph:
    """What `twinning-kg build` published (all graphs, as the Turtle dump holds them)."""
    return Graph().parse(site / "twinning-kg.ttl", format="turtle")


@pytest.fixture(scope="module")
def crawl_about_kassel() -> Graph:
    """The crawl's P190 statements about Kassel (Q2865), as Wikidata states them."""
    rows = shared_path("data", "wikidata-p190-2016", "relations.tsv").read_text().splitlines()
    graph = Graph()
    for a, b in (line.split("\t") for line in rows if line):
        if "Q2865" in (a, b):
            graph.add((WD[a], WDT.P190, WD[b]))
    assert (WD.Q2865, WDT.P190, MONTANA) in graph and (MONTANA, WDT.P190, WD.Q2865) in graph
    return graph


def test_reasoner_never_makes_montana_kassels_partner(release: Graph, crawl_about_kassel: Graph) -> None:
    derived = closure(release, crawl_about_kassel)
    assert (KASSEL, TW.twinnedWith, MONTANA) not in derived
    assert not list(derived.triples((MONTANA, TW.twinnedWith, None)))
    # Wikidata's own statement still reaches Kassel through owl:sameAs: it is P190, not ours
    assert (KASSEL, WDT.P190, MONTANA) in derived
    # and every one of our links is a P190 statement
    for a, b in release.subject_objects(TW.twinnedWith):
        assert (a, WDT.P190, b) in derived


def test_with_the_old_equivalence_the_reasoner_would_bring_montana_back(
    release: Graph, crawl_about_kassel: Graph
) -> None:
    """The test above can fail: with owl:equivalentProperty (issue 10's finding) it does."""
    old = Graph()
    old += release
    old.remove((TW.twinnedWith, RDFS.subPropertyOf, WDT.P190))
    old.add((TW.twinnedWith, OWL.equivalentProperty, WDT.P190))
    assert (KASSEL, TW.twinnedWith, MONTANA) in closure(old, crawl_about_kassel)


def test_one_way_p190_statements_stay_one_way(release: Graph) -> None:
    rows = {tuple(line.split("\t")) for line in
            shared_path("data", "wikidata-p190-2016", "relations.tsv").read_text().splitlines() if line}
    a, b = next((a, b) for a, b in sorted(rows) if (b, a) not in rows and a != b)
    derived = closure(release, Graph().add((WD[a], WDT.P190, WD[b])))
    assert (WD[b], WDT.P190, WD[a]) not in derived
    assert (WD[b], TW.twinnedWith, WD[a]) not in derived


def contradictions(graph: Graph) -> list[str]:
    """What in an OWL RL closure would contradict our data, as readable lines."""
    ours = f"{BASE}id/"
    found = [f"inconsistency: {m}" for e in graph.subjects(RDF.type, ERRNS.ErrorMessage)
             for m in graph.objects(e, ERRNS.error)]
    found += [f"{a} owl:sameAs {b}" for a, b in graph.subject_objects(OWL.sameAs)
              if a != b and str(a).startswith(ours) and str(b).startswith(ours)]
    for place in set(graph.subjects(RDF.type, TW.Place)):
        countries = set(graph.objects(place, TW.country))
        if len(countries) > 1:
            found.append(f"{place} in {len(countries)} countries")
    for partnership in set(graph.subjects(RDF.type, TW.Partnership)):
        partners = {p for p in graph.objects(partnership, TW.partner) if str(p).startswith(ours)}
        if len(partners) != 2:
            found.append(f"{partnership} has {len(partners)} partners")
    for cls in (TW.Partnership, TW.Country, TW.Source):
        found += [f"{s} is a place and a {cls}" for s in graph.subjects(RDF.type, TW.Place)
                  if (s, RDF.type, cls) in graph]
    return found


def test_reasoner_over_our_graph_alone_derives_nothing_contradicting_it(release: Graph) -> None:
    derived = closure(release)
    assert contradictions(derived) == []
    # and no new links between places: the shortcut stays what the partnerships say
    ours = f"{BASE}id/"
    links = {(a, b) for a, b in derived.subject_objects(TW.twinnedWith)
             if str(a).startswith(ours) and str(b).startswith(ours)}
    assert links == {(a, b) for a, b in release.subject_objects(TW.twinnedWith)}
    assert len(derived) > len(release)  # the reasoner did run


@pytest.mark.parametrize(
    ("name", "mistake"),
    [
        ("second country", lambda g: g.add((KASSEL, TW.country, URIRef(f"{BASE}id/country/FR")))),
        ("third partner", lambda g: g.add((URIRef(f"{BASE}id/partnership/kassel--florence"), TW.partner,
                                           URIRef(f"{BASE}id/place/mulhouse")))),
        ("place as source", lambda g: g.add((KASSEL, RDF.type, TW.Source))),
    ],
)
def test_the_contradiction_check_catches_what_it_looks_for(
    release: Graph, name: str, mistake: Callable[[Graph], object]
) -> None:
    broken = Graph()
    broken += release
    mistake(broken)
    derived = closure(broken)
    assert contradictions(derived), name



def test_the_version_iri_dereferences_to_the_ontology(base_url: str) -> None:
    import httpx

    with httpx.Client(base_url=base_url, timeout=30) as client:
        graph = Graph().parse(data=client.get("/ontology", params={"format": "ttl"}).text, format="turtle")
        version = graph.value(ONTOLOGY, OWL.versionIRI)
        assert version is not None and str(version).startswith(f"{BASE}ontology/")
        r = client.get("/ontology/" + str(version).rsplit("/", 1)[1], params={"format": "ttl"})
        assert r.status_code == 303 and r.headers["location"].endswith("/ontology?format=ttl")
        assert client.get("/ontology/0.0.1").status_code == 404
