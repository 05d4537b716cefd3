"""The curator-mistake battery (issue 10): realistic mistakes made when adding or editing a
partnership, each on a fresh copy of the real sources; `twinning-kg validate` must exit 1
on every one and name the rule that caught it (it exits 0 on the real data:
tests/test_validate_cli.py). The edits are the ones a curator would make in the Turtle
files under data/, not synthetic graphs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

PREFIXES = """@prefix tw:      <ontology#> .
@prefix place:   <id/place/> .
@prefix pship:   <id/partnership/> .
@prefix source:  <id/source/> .
@prefix kind:    <id/kind/> .
@prefix status:  <id/status/> .
@prefix prec:    <id/precision/> .
@prefix country: <id/country/> .
@prefix rdfs:    <http://www.w3.org/2000/01/rdf-schema#> .
@prefix owl:     <http://www.w3.org/2002/07/owl#> .
@prefix xsd:     <http://www.w3.org/2001/XMLSchema#> .
@prefix prov:    <http://www.w3.org/ns/prov#> .
@prefix dcterms: <http://purl.org/dc/terms/> .
@prefix geo:     <http://www.w3.org/2003/01/geo/wgs84_pos#> .
"""
KASSEL = "data/kassel"
PS = f"{KASSEL}/partnerships.ttl"
PL = f"{KASSEL}/places.ttl"
NEW = f"{KASSEL}/new.ttl"
CP = """
    rdfs:label "Kassel – {name}"@de , "Kassel – {name}"@en ;
    dcterms:description "Beschreibung"@de , "Description"@en ;
    tw:kind kind:town-twinning ;"""


def replace(path: str, old: str, new: str) -> Callable[[Path], None]:
    def edit(home: Path) -> None:
        file = home / path
        text = file.read_text(encoding="utf-8")
        assert old in text, f"{path} no longer contains {old!r}: update the battery"
        file.write_text(text.replace(old, new, 1), encoding="utf-8")

    return edit


def add(name: str, turtle: str) -> Callable[[Path], None]:
    def edit(home: Path) -> None:
        (home / name).write_text(PREFIXES + turtle, encoding="utf-8")

    return edit


# (id, what the curator did, the edit, a text the report must contain)
MISTAKES: list[tuple[str, str, Callable[[Path], None], str]] = [
    # ---- lifecycle
    ("no-lifecycle", "a new partnership without any event (so no status)",
     add(NEW, """pship:kassel--weimar a tw:Partnership ;""" + CP.format(name="Weimar")
         + """ prov:wasDerivedFrom source:k-2012 ; tw:partner place:kassel , place:weimar .
place:weimar a tw:City ; rdfs:label "Weimar"@de , "Weimar"@en ; tw:country country:DE .
"""), "CuratedStatusShape"),
    ("suspended-undated", "Yaroslavl's suspension without its date",
     replace(PS, 'tw:date "2022-02-24"^^xsd:date ; tw:datePrecision prec:day ;\n'
             '    tw:eventSource source:hna-2022 , source:k-jaroslawl .',
             'tw:datePrecision prec:day ;\n    tw:eventSource source:hna-2022 , source:k-jaroslawl .'),
     "EventDateShape"),
    ("ended-without-date", "an ended partnership written as a shortcut, without its end",
     replace(PS, "tw:kind kind:city-cooperation ;",
             "tw:kind kind:city-cooperation ; tw:status status:ended ;"), "EndedEndDateShape"),
    ("end-before-start", "an ending dated before the establishment",
     replace(PS, "novy-urengoy/suspension-2022-02-24> a tw:Suspension ;\n"
             '    tw:date "2022-02-24"^^xsd:date',
             "novy-urengoy/suspension-2022-02-24> a tw:Ending ;\n"
             '    tw:date "2001-02-24"^^xsd:date'), "EventNotBeforeStartShape"),
    ("active-with-end", "an end date added to an active partnership",
     replace(PS, "tw:kind kind:town-friendship ;",
             'tw:kind kind:town-friendship ; tw:endDate "2020"^^xsd:gYear ; tw:endPrecision prec:year ;'),
     "ActiveWithoutEndShape"),
    ("two-establishments", "a second establishment instead of a renewal",
     replace(PS, "<id/partnership/kassel--arnstadt/renewal-2014> a tw:Renewal ;",
             "<id/partnership/kassel--arnstadt/renewal-2014> a tw:Establishment ;"),
     "EstablishmentOnceShape"),
    # ---- identity and uniqueness
    ("duplicate-pair", "Kassel–Florence entered a second time, as a friendship",
     add(NEW, "pship:kassel--firenze a tw:Partnership ;" + CP.format(name="Firenze")
         + """ prov:wasDerivedFrom source:k-2012 ; tw:partner place:florence , place:kassel ;
    tw:event <id/partnership/kassel--firenze/establishment-1952> .
<id/partnership/kassel--firenze/establishment-1952> a tw:Establishment ; tw:date "1952"^^xsd:gYear ;
    tw:datePrecision prec:year ; tw:eventSource source:k-2012 .
"""), "UniquePairShape"),
    ("duplicate-wikidata", "a second place for Florence's Wikidata item",
     add(NEW, """place:firenze a tw:City ; rdfs:label "Firenze"@de , "Firenze"@en ;
    tw:country country:IT ; owl:sameAs <http://www.wikidata.org/entity/Q2044> .
"""), "UniqueWikidataShape"),
    ("duplicate-geonames", "Arnstadt given Kassel's GeoNames id",
     replace(PL, "<https://sws.geonames.org/2955439/>", "<https://sws.geonames.org/2892518/>"),
     "UniqueGeoNamesShape"),
    ("geonames-document", "the GeoNames document instead of the feature",
     replace(PL, "<https://sws.geonames.org/2955439/>",
             "<https://sws.geonames.org/2955439/about.rdf>"), "PlaceGeoNamesShape"),
    # ---- literals
    ("regional-tag", "a label tagged de-DE",
     replace(PL, 'rdfs:label "Arnstadt"@de ,', 'rdfs:label "Arnstadt"@de-DE ,'),
     "LanguageTagShape"),
    ("month-13", "an establishment in month 13",
     replace(PS, '"1972-11"^^xsd:gYearMonth', '"1972-13"^^xsd:gYearMonth'),
     "WellFormedLiteralShape"),
    ("day-32", "a treaty on 32 January",
     replace(PS, 'tw:date "1988-01-25"^^xsd:date', 'tw:date "1988-01-32"^^xsd:date'),
     "WellFormedLiteralShape"),
    ("malformed-decimal", "a latitude with two decimal points",
     replace(PL, "geo:lat 50.8342 ;", 'geo:lat "50.83.42"^^xsd:decimal ;'),
     "WellFormedLiteralShape"),
    # ---- geography
    ("swapped-coordinates", "Florence's latitude and longitude swapped",
     replace(PL, "geo:lat 43.7714 ; geo:long 11.2542 ;", "geo:lat 11.2542 ; geo:long 43.7714 ;"),
     "CoordinatesInCountryShape"),
    ("sign-lost", "Rovaniemi's longitude with the wrong sign (east written as west)",
     replace(PL, "geo:long 25.7285 ;", "geo:long -25.7285 ;"), "CoordinatesInCountryShape"),
    # ---- provenance policy
    ("montana-from-crawl", "Montana copied from the Wikidata crawl as a partnership",
     add(NEW, "pship:kassel--montana a tw:Partnership ;" + CP.format(name="Montana")
         + """ prov:wasDerivedFrom source:wikidata-p190-2016 ; tw:partner place:kassel , place:montana ;
    tw:event <id/partnership/kassel--montana/establishment-2016> .
<id/partnership/kassel--montana/establishment-2016> a tw:Establishment ; tw:date "2016"^^xsd:gYear ;
    tw:datePrecision prec:year ; tw:eventSource source:wikidata-p190-2016 .
place:montana a tw:City ; rdfs:label "Montana"@de , "Montana"@en , "Монтана"@bg ;
    owl:sameAs <http://www.wikidata.org/entity/Q220121> .
"""), "StrongOrProvisionalShape"),
    ("zhytomyr-not-provisional", "Zhytomyr's provisional marking removed",
     replace(PS, "pship:kassel--zhytomyr a tw:Partnership , tw:ProvisionalPartnership ;",
             "pship:kassel--zhytomyr a tw:Partnership ;"), "StrongOrProvisionalShape"),
    ("weak-event-source", "the travel article cited for Västerås' certificate",
     replace(PS, "tw:eventSource source:regiowiki-vasteras .",
             "tw:eventSource source:seed-de ."),
     "StrongFactSourceShape"),
    # ---- claims
    ("supported-without-source", "a supported verdict whose evidence names no source",
     replace("data/claims/seed-de.ttl", "    prov:wasDerivedFrom source:presse-mulhouse-2015 ;\n", ""),
     "EvidenceSourceRequiredShape"),
    ("quote-offsets", "a quote whose position no longer spans it",
     replace("data/claims/seed-de.ttl", 'oa:end "', 'oa:end "1'), "must span exactly the quote"),
    # ---- curation by graph
    ("unlabelled-new-place", "a new place without a German label (and no curated flag)",
     add(NEW, """place:weimar a tw:City ; rdfs:label "Weimar"@en ; tw:country country:DE .
"""), "CuratedLabelDeShape"),
    # ---- files
    ("stray-file", "a Turtle file put directly under data/",
     add("data/weimar.ttl", 'place:weimar a tw:City ; rdfs:label "Weimar"@de , "Weimar"@en .\n'),
     "lies directly under data/"),
    ("wrong-extension", "a Turtle file with another extension",
     add(f"{KASSEL}/weimar.turtle", 'place:weimar a tw:City ; rdfs:label "Weimar"@de , "Weimar"@en .\n'),
     "only Turtle files ending in .ttl are read"),
]


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    for name in ("ontology", "data", "shapes"):
        shutil.copytree(ROOT / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize(("name", "what", "edit", "expected"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_validate_exits_1_on_the_mistake(home: Path, name: str, what: str, edit, expected: str) -> None:
    edit(home)
    proc = run_cli("validate", env={**os.environ, "TWINNING_KG_HOME": str(home)}, timeout=300)
    assert proc.returncode == 1, f"{what}: not caught\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
    assert expected in proc.stdout, f"{what}: caught, but not by {expected}\n{proc.stdout[-3000:]}"
    assert "Traceback" not in proc.stderr

