"""Every SHACL shape fires on a fixture made to break it, and the real data conforms.

The fixtures in tests/fixtures/shapes/ are loaded *on top of* the real ontology and data
(as the build would see them, shortcuts derived) in one validation run; each expectation
then checks which shapes fired for which focus node of that fixture file, so a fixture that
trips the wrong shape, or an extra one, fails its test. Fixtures named `curated-*` are
loaded into a curated area (as a file under data/<area>/ would be); the others into an
area that is not curated (as an import's graph), so they test one rule each.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rdflib import BNode, Graph, URIRef
from rdflib.namespace import RDF, SH

from twinning_kg.checks.validation import Report, Result, bulk_constraints, load_shapes, validate
from twinning_kg.config import Settings
from twinning_kg.graph.materialise import materialise
from twinning_kg.sources.loading import Loaded, load, parse_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shapes"
SETTINGS = Settings()
FX = f"{SETTINGS.base_iri}id/fixture/"
TW = f"{SETTINGS.base_iri}ontology#"
SHAPES = f"{SETTINGS.base_iri}shapes#"
OUR_SHAPE_FILES = (
    "places.ttl", "partnerships.ttl", "sources.ttl", "curated.ttl", "vocabulary.ttl", "lifecycle.ttl",
    "identity.ttl", "literals.ttl", "geography.ttl", "provenance.ttl",
)

# fixture file -> {(focus, shape, constraint component)} that must fire, and nothing else.
# A focus starting with "tw:" is an ontology term, otherwise it is fx:<name>.
EXPECTED: dict[str, set[tuple[str, str, str]]] = {
    "place-label": {("nameless", "PlaceLabelShape", "MinCount")},
    "place-label-lang": {("twice", "PlaceLabelLangShape", "UniqueLang")},
    "place-wikidata": {
        ("wiki-page", "PlaceWikidataShape", "Or"),
        ("wiki-https", "PlaceWikidataShape", "Or"),
        ("wiki-property", "PlaceWikidataShape", "Or"),
        ("wiki-literal", "PlaceWikidataShape", "Or"),
    },
    "place-lat": {("north", "PlaceLatShape", "MaxInclusive")},
    "place-long": {("west", "PlaceLongShape", "MinInclusive")},
    "place-geometry": {("shapeless", "PlaceGeometryShape", "Class")},
    "place-country": {("stateless", "PlaceCountryShape", "Class")},
    "place-part-of": {("inside", "PlacePartOfShape", "Class")},
    "place-twinned-with": {("twin", "PlaceTwinnedWithShape", "Class")},
    "coordinates-lat": {("long-only", "CoordinatesLatShape", "MinCount")},
    "coordinates-long": {("lat-only", "CoordinatesLongShape", "MinCount")},
    "borough": {("both", "BoroughShape", "Not")},
    "city-province": {("both-province", "CityProvinceShape", "Not")},
    "city-part-of": {("city-in-borough", "CityPartOfShape", "Not")},
    "borough-part-of": {("quarter", "BoroughPartOfShape", "Or")},
    "city-province-part-of": {("province", "CityProvincePartOfShape", "MaxCount")},
    "geometry-wkt": {("plain-point", "GeometryWktShape", "Datatype")},
    "country-code": {("deu", "CountryCodeShape", "Pattern")},
    "country-label-de": {("no-de", "CountryLabelDeShape", "QualifiedMinCount")},
    "country-label-en": {("no-en", "CountryLabelEnShape", "QualifiedMinCount")},
    "country-label-lang": {("two-en", "CountryLabelLangShape", "UniqueLang")},
    "partnership-partner-count": {
        ("alone", "PartnershipPartnerCountShape", "MinCount"),
        ("self", "PartnershipPartnerCountShape", "MinCount"),
        ("three", "PartnershipPartnerCountShape", "MaxCount"),
    },
    "partnership-partner-class": {
        ("with-country", "PartnershipPartnerClassShape", "Class"),
        ("lone", "PlaceTwinnedWithShape", "Class"),
    },
    "partnership-kind": {
        ("wrong-kind", "PartnershipKindShape", "Node"),
        ("no-kind", "PartnershipKindShape", "MinCount"),
    },
    "partnership-status": {("wrong-status", "PartnershipStatusShape", "Node")},
    "partnership-status-since": {("since-german", "PartnershipStatusSinceShape", "Or")},
    # a start of a wrong datatype matches no precision either
    "partnership-start-date": {
        ("start-string", "PartnershipStartDateShape", "Or"),
        ("start-string", "StartPrecisionShape", "Or"),
    },
    "partnership-end-date": {
        ("end-string", "PartnershipEndDateShape", "Or"),
        ("end-string", "EndPrecisionShape", "Or"),
    },
    "partnership-start-precision": {("start-precision", "PartnershipStartPrecisionShape", "Node")},
    "partnership-end-precision": {("end-precision", "PartnershipEndPrecisionShape", "Node")},
    "partnership-focus": {("wrong-focus", "PartnershipFocusShape", "Node")},
    "partnership-occasion": {("plain-occasion", "PartnershipOccasionShape", "Datatype")},
    "partnership-one-way": {("one-way", "PartnershipOneWayShape", "Datatype")},
    "partnership-source": {("unsourced", "PartnershipSourceShape", "MinCount")},
    "partnership-fact-source": {("fact-source", "PartnershipFactSourceShape", "Class")},
    "start-precision": {
        ("year-as-day", "StartPrecisionShape", "Or"),
        ("no-precision", "StartPrecisionShape", "Or"),
    },
    "end-precision": {("end-month-as-year", "EndPrecisionShape", "Or")},
    "start-not-future": {
        ("future-day", "StartNotFutureShape", "SPARQL"),
        ("future-year", "StartNotFutureShape", "SPARQL"),
    },
    "end-not-before-start": {("backwards", "EndNotBeforeStartShape", "SPARQL")},
    "source-url": {("url-string", "SourceUrlShape", "NodeKind")},
    "source-publisher": {("no-publisher", "SourcePublisherShape", "MinCount")},
    "source-language": {("three-letters", "SourceLanguageShape", "Pattern")},
    "source-kind": {("no-source-kind", "SourceKindShape", "MinCount")},
    "source-reliability": {("medium", "SourceReliabilityShape", "In")},
    "agent-name": {("anonymous", "AgentNameShape", "MinCount")},
    # a curator cannot opt out: the area's graph makes it curated, "false" makes two values
    "curated-flag": {("half-curated", "CuratedFlagShape", "MaxCount")},
    "curated-label-de": {("english-only", "CuratedLabelDeShape", "SPARQL")},
    "curated-label-en": {("german-only", "CuratedLabelEnShape", "SPARQL")},
    # marked tw:curated by hand, so the curated rules apply (lifecycle, status) as well
    "partnership-label-lang": {
        ("two-de", "PartnershipLabelLangShape", "UniqueLang"),
        ("two-de", "CuratedLifecycleShape", "Or"),
        ("two-de", "CuratedStatusShape", "Or"),
    },
    # in a curated area: without events it has no lifecycle and no status either
    "curated-partnership": {
        ("undescribed", "CuratedPartnershipShape", "Or"),
        ("undescribed", "CuratedLifecycleShape", "Or"),
        ("undescribed", "CuratedStatusShape", "Or"),
    },
    "ontology": {
        ("bare-ontology", "OntologyVersionShape", "MinCount"),
        ("bare-ontology", "OntologyVersionIriShape", "MinCount"),
        ("bare-ontology", "OntologyLicenseShape", "MinCount"),
        ("bare-ontology", "OntologyCreatorShape", "MinCount"),
    },
    "terms": {
        ("tw:FixtureNoDeLabel", "TermLabelDeShape", "QualifiedMinCount"),
        ("tw:fixtureNoEnLabel", "TermLabelEnShape", "QualifiedMinCount"),
        ("tw:fixtureNoDeComment", "TermCommentDeShape", "QualifiedMinCount"),
        ("tw:FixtureNoEnComment", "TermCommentEnShape", "QualifiedMinCount"),
        ("tw:FixtureTwoLabels", "TermLangShape", "UniqueLang"),
        ("tw:FixtureUndefined", "TermDefinedByShape", "SPARQL"),
    },
    "concepts": {
        ("scheme-no-de", "SchemeLabelDeShape", "QualifiedMinCount"),
        ("scheme-no-en", "SchemeLabelEnShape", "QualifiedMinCount"),
        ("concept-no-de", "ConceptLabelDeShape", "QualifiedMinCount"),
        ("concept-no-en", "ConceptLabelEnShape", "QualifiedMinCount"),
        ("concept-two-de", "ConceptLabelLangShape", "UniqueLang"),
        ("concept-no-scheme", "ConceptSchemeMembershipShape", "MinCount"),
    },
    # the way the world import writes places and partnerships: nothing may fire
    "imported-ok": set(),
    # ---- lifecycle
    "lifecycle-suspended-since": {("suspended-undated", "SuspendedSinceShape", "Or")},
    "lifecycle-ended-end": {("ended-undated", "EndedEndDateShape", "Or")},
    "lifecycle-active-end": {("active-ended", "ActiveWithoutEndShape", "Not")},
    "lifecycle-status-since-before-start": {
        ("since-before-start", "StatusSinceNotBeforeStartShape", "SPARQL"),
    },
    "lifecycle-status-as-of": {("as-of-text", "PartnershipStatusAsOfShape", "Or")},
    "event-date": {("undated", "EventDateShape", "MinCount")},
    # the start derived from an imprecise establishment lacks its precision too
    "event-precision": {
        ("imprecise", "EventPrecisionShape", "MinCount"),
        ("imprecise", "EventDatePrecisionShape", "Or"),
        ("p-imprecise", "StartPrecisionShape", "Or"),
    },
    "event-date-precision": {
        ("mistyped", "EventDatePrecisionShape", "Or"),
        ("p-mistyped", "StartPrecisionShape", "Or"),
    },
    "event-source": {("unsourced-event", "EventSourceShape", "MinCount")},
    "event-owner": {("orphan", "EventOwnerShape", "MinCount")},
    "establishment-once": {
        ("twice-established", "EstablishmentOnceShape", "QualifiedMaxCount"),
        ("never-established", "EstablishmentOnceShape", "QualifiedMinCount"),
    },
    # the build then derives "active since 1995" (the renewal), before the start as well
    "event-not-before-start": {
        ("renewed-1995", "EventNotBeforeStartShape", "SPARQL"),
        ("p-early", "StatusSinceNotBeforeStartShape", "SPARQL"),
    },
    "event-not-in-future": {("renewed-2999", "EventNotInFutureShape", "SPARQL")},
    "succession": {
        ("bare-succession", "SuccessionPredecessorShape", "MinCount"),
        ("bare-succession", "SuccessionSuccessorShape", "MinCount"),
        ("same-succession", "SuccessionSuccessorShape", "Disjoint"),
        ("stranger-succession", "SuccessorIsPartnerShape", "SPARQL"),
    },
    "confirmation": {("vague", "ConfirmationShape", "MinCount")},
    "curated-lifecycle": {
        ("curated-bare", "CuratedLifecycleShape", "Or"),
        ("curated-bare", "CuratedStatusShape", "Or"),
    },
    # ---- provenance policy
    "curated-weak-only": {
        ("kassel--montana", "StrongOrProvisionalShape", "Or"),
        ("kassel--montana", "StrongFactSourceShape", "Or"),
    },
    "curated-provisional-ok": set(),
    # provisional: what a weak source says and no more (no labels in de/en, no description,
    # no dated lifecycle); confirmed without them, every one of those rules fires
    "curated-provisional-bare": {
        ("confirmed-bare", "CuratedLabelDeShape", "SPARQL"),
        ("confirmed-bare", "CuratedLabelEnShape", "SPARQL"),
        ("confirmed-bare", "CuratedPartnershipShape", "Or"),
        ("confirmed-bare", "CuratedLifecycleShape", "Or"),
        ("confirmed-bare", "CuratedStatusShape", "Or"),
        ("confirmed-bare", "StrongOrProvisionalShape", "Or"),
    },
    # ---- identity and uniqueness
    "identity-pair": {
        ("pair-one", "UniquePairShape", "SPARQL"),
        ("pair-two", "UniquePairShape", "SPARQL"),
    },
    "identity-wikidata": {
        ("twin-a", "UniqueWikidataShape", "SPARQL"),
        ("twin-b", "UniqueWikidataShape", "SPARQL"),
        ("two-items", "PlaceOneWikidataShape", "QualifiedMaxCount"),
    },
    "identity-geonames": {
        ("geo-a", "UniqueGeoNamesShape", "SPARQL"),
        ("geo-b", "UniqueGeoNamesShape", "SPARQL"),
        ("geo-http", "PlaceGeoNamesShape", "Or"),
        ("geo-document", "PlaceGeoNamesShape", "Or"),
        ("geo-page", "PlaceGeoNamesShape", "Or"),
        ("geo-two", "PlaceOneGeoNamesShape", "QualifiedMaxCount"),
    },
    # ---- literals
    "curated-literal-language": {("regional", "LanguageTagShape", "SPARQL")},
    "literal-ill-typed": {
        ("month-13", "WellFormedLiteralShape", "SPARQL"),
        ("day-32", "WellFormedLiteralShape", "SPARQL"),
        ("february-29", "WellFormedLiteralShape", "SPARQL"),
        ("two-points", "WellFormedLiteralShape", "SPARQL"),
    },
    # ---- geography
    "geography": {
        ("swapped", "CoordinatesInCountryShape", "SPARQL"),
        ("sign-lost", "CoordinatesInCountryShape", "SPARQL"),
        ("unmapped", "CountryExtentShape", "Node"),
    },
    "bounding-box": {
        ("bad-box", "BoxSouthShape", "LessThanOrEquals"),
        ("bad-box", "BoxWestShape", "MinCount"),
        ("bad-box", "BoxEastShape", "MaxInclusive"),
        ("tall-box", "BoxNorthShape", "MaxInclusive"),
    },
}


def _iri(focus: str) -> str:
    return TW + focus[3:] if focus.startswith("tw:") else FX + focus


def _component(result: Result) -> str:
    name = (result.component or "").rsplit(":", 1)[-1].rsplit("#", 1)[-1]
    return name.removesuffix("ConstraintComponent")


def fixture_area(path: Path) -> str:
    return "fixtures-curated" if path.stem.startswith("curated-") else "fixtures"


def load_fixtures(paths: list[Path]) -> Loaded:
    """Real data plus fixtures, shortcuts derived as `twinning-kg validate` does."""
    loaded = load(SETTINGS, extra=[(p, fixture_area(p)) for p in paths], uncurated=("fixtures",))
    materialise(loaded.dataset, SETTINGS)
    return loaded


@pytest.fixture(scope="module")
def real_report() -> Report:
    loaded = load(SETTINGS)
    materialise(loaded.dataset, SETTINGS)
    return validate(loaded, SETTINGS)


@pytest.fixture(scope="module")
def fixture_report() -> Report:
    return validate(load_fixtures(sorted(FIXTURES.glob("*.ttl"))), SETTINGS)


def test_real_data_conforms(real_report: Report) -> None:
    assert real_report.conforms, real_report.text()
    assert real_report.results == []


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.ttl")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shape_fires_on_its_fixture(fixture_report: Report, name: str) -> None:
    path = str(FIXTURES / f"{name}.ttl")
    fired = {
        (r.focus_iri, (r.shape_iri or "").removeprefix(SHAPES), _component(r))
        for r in fixture_report.results
        if path in r.files
    }
    expected = {(_iri(focus), shape, comp) for focus, shape, comp in EXPECTED[name]}
    assert fired == expected


def test_results_name_their_fixture_file_and_both_languages(fixture_report: Report) -> None:
    assert not fixture_report.conforms
    for r in fixture_report.results:
        assert r.files, f"no source file for {r.focus}"
        assert all(f.startswith(str(FIXTURES)) for f in r.files), r
        assert r.message_en and r.message_de, r
        assert r.severity == "Violation"


def test_every_shape_with_constraints_is_covered_by_a_fixture() -> None:
    """A shape without a fixture where it fires would be an untested rule."""
    # ours only: other areas (e.g. shapes/claims.ttl) test their own shapes
    shapes = Graph()
    for name in OUR_SHAPE_FILES:
        shapes += parse_file(SETTINGS.shapes_dir / name, SETTINGS.base_iri)
    structural = {SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.targetNode, SH.property,
                  SH.message, SH.name, SH.description, SH.severity, SH.deactivated, SH.path}
    used = set(shapes.objects(None, SH.property))
    targets = (SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf, SH.targetNode)
    targeted = {s for s in set(shapes.subjects()) if any((s, p, None) in shapes for p in targets)}
    with_rules = set()
    for shape in used | targeted:
        if isinstance(shape, BNode):
            continue
        predicates = {p for p in shapes.predicates(shape) if str(p).startswith(str(SH))}
        if predicates - structural:
            with_rules.add(str(shape).removeprefix(SHAPES))
    covered = {shape for expectations in EXPECTED.values() for _, shape, _ in expectations}
    assert with_rules, "no shapes found"
    assert with_rules <= covered, f"shapes without a firing fixture: {sorted(with_rules - covered)}"
    # every node and property shape has bilingual messages
    for shape in with_rules:
        node = URIRef(SHAPES + shape)
        langs = {m.language for m in shapes.objects(node, SH.message)}
        langs |= {m.language for c in shapes.objects(node, SH.sparql) for m in shapes.objects(c, SH.message)}
        assert {"de", "en"} <= langs, shape


def test_every_node_shape_is_named_and_typed() -> None:
    shapes = load_shapes(SETTINGS)
    for shape in shapes.subjects(RDF.type, SH.NodeShape):
        assert isinstance(shape, URIRef), shape


def _utc_today() -> dt.date:
    """Today as the shapes see it: SPARQL's NOW() is UTC (rdflib, Oxigraph), not the local date."""
    return dt.datetime.now(dt.UTC).date()


def test_start_today_or_this_year_is_not_in_the_future(tmp_path: Path) -> None:
    """The boundary: a start today (day) or this year (year, month) is allowed."""
    for _attempt in range(2):  # once more if midnight (UTC) passed during the validation
        today = _utc_today()
        fired = _future_starts(tmp_path, today)
        if _utc_today() == today:
            break
    assert fired == {(FX + "next-year", "StartNotFutureShape")}


def _future_starts(tmp_path: Path, today: dt.date) -> set[tuple[str, str]]:
    """Validate partnerships starting today, this month, this year and next year."""
    body = (FIXTURES / "place-label.ttl").read_text().split("fx:nameless")[0] + f"""
fx:today a tw:Partnership ; tw:partner place:tiergarten , place:ramat-gan ; tw:kind kind:town-twinning ;
    prov:wasDerivedFrom source:k-2012 ;
    tw:startDate "{today.isoformat()}"^^xsd:date ; tw:startPrecision prec:day .
fx:this-month a tw:Partnership ; tw:partner place:tiergarten , place:izmit ; tw:kind kind:town-twinning ;
    prov:wasDerivedFrom source:k-2012 ;
    tw:startDate "{today:%Y-%m}"^^xsd:gYearMonth ; tw:startPrecision prec:month .
fx:this-year a tw:Partnership ; tw:partner place:tiergarten , place:yaroslavl ; tw:kind kind:town-twinning ;
    prov:wasDerivedFrom source:k-2012 ;
    tw:startDate "{today:%Y}"^^xsd:gYear ; tw:startPrecision prec:year .
fx:next-year a tw:Partnership ; tw:partner place:tiergarten , place:vasteras ; tw:kind kind:town-twinning ;
    prov:wasDerivedFrom source:k-2012 ;
    tw:startDate "{today.year + 1}"^^xsd:gYear ; tw:startPrecision prec:year .
"""
    path = tmp_path / "today.ttl"
    path.write_text(body)
    report = validate(load_fixtures([path]), SETTINGS)
    return {(r.focus_iri, (r.shape_iri or "").removeprefix(SHAPES)) for r in report.results}


def test_report_text_and_json(fixture_report: Report) -> None:
    import json

    text = fixture_report.text()
    assert "does not conform" in text
    assert "PlaceLabelShape" in text and "place-label.ttl" in text
    assert "A place needs at least one label" in text and "Ein Ort braucht" in text
    body = json.loads(fixture_report.to_json())
    assert body["conforms"] is False
    assert len(body["results"]) == len(fixture_report.results)


def test_bulk_sparql_gives_the_same_results_as_pyshacl() -> None:
    """validation.py runs SPARQL constraints once over the graph; pyshacl per focus node."""
    names = ("start-not-future", "end-not-before-start", "imported-ok")
    loaded = load_fixtures([FIXTURES / f"{name}.ttl" for name in names])

    def key(report: Report) -> set[tuple]:
        return {(r.focus_iri, r.shape_iri, r.path, r.value, r.message_en, r.message_de)
                for r in report.results}

    in_bulk = {str(c.shape).removeprefix(SHAPES) for c in bulk_constraints(load_shapes(SETTINGS))}
    assert {"StartNotFutureShape", "EndNotBeforeStartShape"} <= in_bulk

    bulk = validate(loaded, SETTINGS)
    per_node = validate(loaded, SETTINGS, bulk_sparql=False)
    assert len(bulk.results) == 3
    assert key(bulk) == key(per_node)
    assert bulk.conforms is per_node.conforms is False
