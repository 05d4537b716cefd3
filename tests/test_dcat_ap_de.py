"""GovData's profile DCAT-AP.de 3.0 and SEMIC's DCAT-AP 3.0.0 on the catalog the server serves.

Both profiles run on what a harvester gets from `/catalog` of the real server, with and
without `--base-url`, and on the catalogs of a world import and of a deployment with its
own contact; DCAT-AP.de exactly as GovData's README for offline validation says
(`dcat_conformance`). The negative tests show the German shapes fire on what they are
meant to catch, so "no result" means something.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rdflib import Graph, Literal, Namespace, URIRef

from conftest import ServerProcess, run_cli
from dcat_conformance import Result, dcat_ap, dcat_ap_de, de_vocabulary, severities, with_vocabularies

DCAT = Namespace("http://www.w3.org/ns/dcat#")
DCTERMS = Namespace("http://purl.org/dc/terms/")
DCATDE = Namespace("http://dcat-ap.de/def/dcatde/")
RDF = Namespace("http://www.w3.org/1999/02/22-rdf-syntax-ns#")
RDFS = Namespace("http://www.w3.org/2000/01/rdf-schema#")
SKOS = Namespace("http://www.w3.org/2004/02/skos/core#")
OWL = Namespace("http://www.w3.org/2002/07/owl#")
LICENCES = Namespace("http://dcat-ap.de/def/licenses/")
CC_BY = LICENCES["cc-by/4.0"]
CC0 = LICENCES["cc-zero"]
LEVEL = Namespace("http://dcat-ap.de/def/politicalGeocoding/Level/")
KASSEL_KEY = URIRef("http://dcat-ap.de/def/politicalGeocoding/municipalityKey/06611000")


@pytest.fixture(scope="module", params=["with --base-url", "without --base-url"])
def served(request: pytest.FixtureRequest) -> tuple[Graph, str]:
    """The catalog as `/catalog` serves it, and the prefix our IRIs carry in it."""
    with_base_url = request.param == "with --base-url"
    server: ServerProcess = request.getfixturevalue("local_server" if with_base_url else "server")
    response = httpx.get(server.url + "/catalog", headers={"Accept": "text/turtle"}, timeout=30)
    assert response.status_code == 200, response.text
    catalog = Graph().parse(data=response.content, format="turtle")
    prefix = server.url + "/" if with_base_url else "https://w3id.org/twinning-kg/"
    assert (URIRef(prefix + "catalog"), RDF.type, DCAT.Catalog) in catalog
    return catalog, prefix


def copy(graph: Graph) -> Graph:
    out = Graph()
    for triple in graph:
        out.add(triple)
    return out


def main_dataset(prefix: str) -> URIRef:
    return URIRef(prefix + "dataset/kassel")


# --- the catalogs conform -----------------------------------------------------------------


def test_served_catalog_has_no_violation_and_no_warning_under_dcat_ap_de(served: tuple[Graph, str]) -> None:
    catalog, _ = served
    results = dcat_ap_de(catalog)
    assert results == [], "\n".join(map(str, results))


def test_served_catalog_has_no_violation_under_dcat_ap_3(served: tuple[Graph, str]) -> None:
    catalog, _ = served
    violations = [r for r in dcat_ap(catalog) if r.severity == "Violation"]
    assert violations == [], "\n".join(map(str, violations))


def test_world_release_catalog_conforms_to_both_profiles(world: Path) -> None:
    """The catalog of a world import: a second dataset, CC0, served through SPARQL only."""
    catalog = Graph().parse(world / "catalog.ttl", format="turtle")
    world_dataset = URIRef("https://w3id.org/twinning-kg/dataset/wikidata-p190-2016")
    assert (world_dataset, RDF.type, DCAT.Dataset) in catalog
    assert dcat_ap_de(catalog) == []
    assert [r for r in dcat_ap(catalog) if r.severity == "Violation"] == []


def test_catalog_with_an_operators_contact_conforms_to_both_profiles(tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = run_cli("build", "--out", str(out), "--contact-name", "Open-Data-Team Beispielstadt",
                   "--contact-email", "opendata@beispielstadt.example", "--contact-url",
                   "https://beispielstadt.example/opendata")
    assert proc.returncode == 0, proc.stderr
    catalog = Graph().parse(out / "catalog.ttl", format="turtle")
    assert (None, URIRef("http://www.w3.org/2006/vcard/ns#hasEmail"),
            URIRef("mailto:opendata@beispielstadt.example")) in catalog
    assert dcat_ap_de(catalog) == []
    assert [r for r in dcat_ap(catalog) if r.severity == "Violation"] == []


# --- what a German portal reads -----------------------------------------------------------


def test_licences_come_from_the_dcat_ap_de_list(served: tuple[Graph, str]) -> None:
    """CC BY 4.0 for our data, CC0 for the catalog's own metadata; as the official list has them."""
    catalog, prefix = served
    vocabulary = de_vocabulary()
    scheme = URIRef("http://dcat-ap.de/def/licenses")
    used = {o for o in catalog.objects(None, DCTERMS.license)}
    assert used == {CC_BY, CC0}
    dumps = set(catalog.objects(main_dataset(prefix), DCAT.distribution))
    assert len(dumps) == 10 and {catalog.value(d, DCTERMS.license) for d in dumps} == {CC_BY}
    assert catalog.value(URIRef(prefix + "catalog"), DCTERMS.license) == CC0
    for licence in used:
        assert (licence, SKOS.inScheme, scheme) in vocabulary, licence  # really in GovData's list
        assert (licence, RDF.type, DCTERMS.LicenseDocument) in catalog
        official = {str(o) for o in vocabulary.objects(licence, SKOS.prefLabel)}
        german = {str(o) for o in catalog.objects(licence, SKOS.prefLabel) if o.language == "de"}
        assert german == official, licence
    # The list's CC BY 4.0 entry refers to the Creative Commons deed our catalog links as well.
    deed = URIRef("http://creativecommons.org/licenses/by/4.0/")
    assert (CC_BY, DCTERMS.references, deed) in vocabulary
    assert catalog.value(CC_BY, RDFS.seeAlso) == deed
    for dist in dumps:  # CC BY: the name to attribute, as GovData shows it
        assert catalog.value(dist, DCATDE.licenseAttributionByText) == Literal("twinning-kg")


def test_political_geocoding_of_kassel(served: tuple[Graph, str]) -> None:
    """Kassel at municipality level: the level as dcatde:politicalGeocodingLevelURI, the area
    (official municipality key 06611000) in dct:spatial, where DCAT-AP.de 3.0 wants it now."""
    catalog, prefix = served
    dataset = main_dataset(prefix)
    assert set(catalog.objects(dataset, DCATDE.politicalGeocodingLevelURI)) == {LEVEL.municipality}
    assert KASSEL_KEY in set(catalog.objects(dataset, DCTERMS.spatial))
    assert (KASSEL_KEY, RDF.type, DCTERMS.Location) in catalog
    level_scheme = URIRef("http://dcat-ap.de/def/politicalGeocoding/Level")
    assert (LEVEL.municipality, SKOS.inScheme, level_scheme) in catalog
    # Deprecated in 3.0 (its shape warns, see below); dct:spatial carries the key instead.
    assert (None, DCATDE.politicalGeocodingURI, None) not in catalog


def test_no_contributor_id(served: tuple[Graph, str]) -> None:
    """dcatde:contributorID names a system that delivers to GovData directly (the list in
    vocab-contributors.rdf); this project is none of them, so it states none."""
    catalog, _ = served
    assert (None, DCATDE.contributorID, None) not in catalog


def test_dcat_version_replaces_owl_version_info(served: tuple[Graph, str]) -> None:
    catalog, prefix = served
    assert (None, OWL.versionInfo, None) not in catalog
    for dataset in catalog.subjects(RDF.type, DCAT.Dataset):
        assert catalog.value(dataset, DCAT.version) is not None, dataset


# --- the German shapes fire ---------------------------------------------------------------


def new_results(catalog: Graph, change: Callable[[Graph], None]) -> list[Result]:
    """What a change to the served catalog adds to its DCAT-AP.de results (it had none)."""
    broken = copy(catalog)
    change(broken)
    return dcat_ap_de(broken)


def test_a_licence_outside_the_list_is_a_warning(served: tuple[Graph, str]) -> None:
    catalog, prefix = served
    dist = URIRef(prefix + "distribution/ttl")
    outside = URIRef("http://creativecommons.org/licenses/by/4.0/")

    def change(g: Graph) -> None:
        g.set((dist, DCTERMS.license, outside))
        g.add((outside, RDF.type, DCTERMS.LicenseDocument))  # still fine for DCAT-AP 3.0.0

    results = new_results(catalog, change)
    assert severities(results) == {"Warning": 1}, results
    assert results[0].focus == str(outside) and "kv-licenses" in results[0].message
    broken = copy(catalog)
    change(broken)
    assert [r for r in dcat_ap(broken) if r.severity == "Violation"] == []


def test_deprecated_terms_are_warnings(served: tuple[Graph, str]) -> None:
    catalog, prefix = served
    dataset = main_dataset(prefix)
    results = new_results(catalog, lambda g: g.add((dataset, OWL.versionInfo, Literal("1.0"))))
    assert severities(results) == {"Warning": 1} and "owl:versionInfo" in results[0].message, results
    results = new_results(catalog, lambda g: g.add((dataset, DCATDE.politicalGeocodingURI, KASSEL_KEY)))
    assert severities(results) == {"Warning": 1}, results
    assert "politicalGeocodingURI" in results[0].message


def test_a_distribution_without_licence_is_a_violation(served: tuple[Graph, str]) -> None:
    catalog, prefix = served
    dist = URIRef(prefix + "distribution/nq")
    results = new_results(catalog, lambda g: g.remove((dist, DCTERMS.license, None)))
    assert severities(results) == {"Violation": 1}, results
    assert results[0].focus == str(dist) and "dcterms:license" in results[0].message


def test_an_unknown_contributor_or_level_is_a_warning(served: tuple[Graph, str]) -> None:
    catalog, prefix = served
    dataset = main_dataset(prefix)
    invented = URIRef("http://dcat-ap.de/def/contributors/twinningKg")
    results = new_results(catalog, lambda g: g.add((dataset, DCATDE.contributorID, invented)))
    assert severities(results) == {"Warning": 1} and "contributorID" in results[0].message, results
    listed = URIRef("http://dcat-ap.de/def/contributors/hessen")  # in the list, so no warning
    assert new_results(catalog, lambda g: g.add((dataset, DCATDE.contributorID, listed))) == []
    results = new_results(catalog, lambda g: g.remove((LEVEL.municipality, SKOS.inScheme, None)))
    assert severities(results) == {"Warning": 1} and "politicalGeocodingLevelURI" in results[0].message


def test_unknown_authority_iris_are_refused_not_validated(served: tuple[Graph, str]) -> None:
    """The offline mix-in states table facts only for IRIs that exist in the tables."""
    catalog, prefix = served
    broken = copy(catalog)
    typo = URIRef("http://publications.europa.eu/resource/authority/file-type/TURTLE")
    broken.set((URIRef(prefix + "distribution/ttl"), DCTERMS["format"], typo))
    with pytest.raises(AssertionError, match="file-type/TURTLE"):
        with_vocabularies(broken)
