"""Validating a catalog with the official shapes: DCAT-AP 3.0.0 (SEMIC) and DCAT-AP.de 3.0 (GovData).

DCAT-AP.de is run the way `../shared/conformance/dcat-ap-de-3.0/README.md` says to run it
offline: its four shape files; the data graph mixed with the two vocabulary files there and,
for each EU authority IRI the catalog uses, the two facts its table states about it
(`fixtures/publication/eu-authority-tables.ttl`, which lists only IRIs that exist in
those tables; a catalog using any other authority IRI is refused, not validated).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyshacl
from rdflib import Graph, Namespace, URIRef

from conftest import FIXTURES, shared_path

SH = Namespace("http://www.w3.org/ns/shacl#")
RDF_TYPE = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
DE_SHAPE_FILES = (
    "dcat-ap-SHACL-DE.ttl",
    "dcat-ap-de-controlledvocabularies.ttl",
    "dcat-ap-spec-german-additions.ttl",
    "dcat-ap-de-deprecated.ttl",
)
DE_VOCABULARY_FILES = ("vocab-licenses-open.rdf", "vocab-contributors.rdf")
EU_TABLES = FIXTURES / "publication" / "eu-authority-tables.ttl"
# An entry of an authority table: .../authority/<table>/<code> (the table itself is the scheme).
EU_ENTRY = re.compile(r"^http://publications\.europa\.eu/resource/authority/[^/]+/[^/]+$")


@dataclass(frozen=True, order=True)
class Result:
    """One SHACL validation result, as a portal's report lists it."""

    severity: str  # "Violation", "Warning", "Info"
    focus: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.focus} {self.path}: {self.message}"


def de_dir() -> Path:
    return shared_path("conformance", "dcat-ap-de-3.0")


@cache
def dcat_ap_shapes() -> Graph:
    return Graph().parse(shared_path("conformance", "dcat-ap-3.0.0", "dcat-ap-SHACL.ttl"), format="turtle")


@cache
def dcat_ap_de_shapes() -> Graph:
    shapes = Graph()
    for name in DE_SHAPE_FILES:
        shapes.parse(de_dir() / name, format="turtle")
    return shapes


@cache
def de_vocabulary() -> Graph:
    """The DCAT-AP.de licence and contributor vocabularies, as GovData's validator mirrors them."""
    vocabularies = Graph()
    for name in DE_VOCABULARY_FILES:
        vocabularies.parse(de_dir() / name, format="xml")
    return vocabularies


@cache
def _eu_tables() -> Graph:
    return Graph().parse(EU_TABLES, format="turtle")


def with_vocabularies(catalog: Graph) -> Graph:
    """The catalog plus what GovData's validator would import online (see module doc)."""
    tables = _eu_tables()
    used = {t for triple in catalog for t in triple if isinstance(t, URIRef) and EU_ENTRY.match(str(t))}
    unknown = sorted(str(iri) for iri in used if (iri, None, None) not in tables)
    if unknown:
        raise AssertionError(
            f"the catalog uses EU authority IRIs not listed in {EU_TABLES.name}: {unknown}; "
            "add them there only if they exist in the EU Vocabularies tables"
        )
    data = Graph()
    for triple in catalog:
        data.add(triple)
    for triple in de_vocabulary():
        data.add(triple)
    for iri in used:
        for triple in tables.triples((iri, None, None)):
            data.add(triple)
    return data


def validate(data: Graph, shapes: Graph) -> list[Result]:
    """pyshacl without inference (how both profiles are meant to run); every result, sorted."""
    _, report, _ = pyshacl.validate(data, shacl_graph=shapes, inference="none", allow_warnings=True)
    results = []
    for node in report.subjects(RDF_TYPE, SH.ValidationResult):
        fields = (SH.resultSeverity, SH.focusNode, SH.resultPath, SH.resultMessage)
        severity, focus, path, message = (str(report.value(node, p)) for p in fields)
        results.append(Result(severity.rsplit("#", 1)[-1], focus, path, message))
    return sorted(results)


def dcat_ap_de(catalog: Graph) -> list[Result]:
    """Results of the DCAT-AP.de 3.0 shapes on the catalog, run as GovData's README says."""
    return validate(with_vocabularies(catalog), dcat_ap_de_shapes())


def dcat_ap(catalog: Graph) -> list[Result]:
    """Results of the DCAT-AP 3.0.0 shapes on the catalog alone."""
    return validate(catalog, dcat_ap_shapes())


def severities(results: list[Result]) -> dict[str, int]:
    return dict(Counter(r.severity for r in results))
