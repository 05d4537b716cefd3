"""Namespaces and IRI builders.

Term names live in `ontology/twinning.ttl`; this module only knows how IRIs are
formed (docs/architecture.md), so Python never carries facts.
"""

from __future__ import annotations

from rdflib import Namespace
from rdflib.namespace import DCTERMS, FOAF, OWL, PROV, RDF, RDFS, SKOS, VOID, XSD

from twinning_kg.config import DEFAULT_BASE_IRI, Settings

# DCAT 3: rdflib's closed DCAT 2 term list lacks dcat:version and warns on every use.
DCAT = Namespace("http://www.w3.org/ns/dcat#")
SCHEMA = Namespace("https://schema.org/")
WD = Namespace("http://www.wikidata.org/entity/")
WDT = Namespace("http://www.wikidata.org/prop/direct/")
GEO = Namespace("http://www.w3.org/2003/01/geo/wgs84_pos#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
OA = Namespace("http://www.w3.org/ns/oa#")
SD = Namespace("http://www.w3.org/ns/sparql-service-description#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
GEONAMES = "https://sws.geonames.org/"

__all__ = [
    "DCAT", "DCTERMS", "FOAF", "OWL", "PROV", "RDF", "RDFS", "SKOS", "VOID", "XSD",
    "SCHEMA", "WD", "WDT", "GEO", "GSP", "OA", "SD", "SPDX", "VCARD", "GEONAMES", "Iris", "tw",
]


def tw(base_iri: str = DEFAULT_BASE_IRI) -> Namespace:
    """The ontology namespace (hash namespace under the base IRI)."""
    return Namespace(f"{base_iri}ontology#")


class Iris:
    """IRI builders for one base IRI (see docs/architecture.md).

    `vocabulary`: base of the kit's vocabulary (terms, concept schemes), default the base
    IRI itself; a city's project keeps its resources under its own base and speaks the
    kit's vocabulary (`Settings.vocabulary`).
    """

    def __init__(self, base_iri: str = DEFAULT_BASE_IRI, vocabulary: str | None = None) -> None:
        self.base = base_iri
        self.vocabulary = vocabulary or base_iri
        self.TW = tw(self.vocabulary)
        self.ontology = Namespace(self.vocabulary)["ontology"]
        self.id = Namespace(f"{base_iri}id/")
        self.vocab_id = Namespace(f"{self.vocabulary}id/")
        self.graph = Namespace(f"{base_iri}graph/")

    @classmethod
    def of(cls, settings: Settings) -> Iris:
        return cls(settings.base_iri, settings.vocabulary)

    def place(self, key: str):
        return self.id[f"place/{key}"]

    def geometry(self, key: str):
        return self.id[f"geometry/{key}"]

    def partnership(self, key_a: str, key_b: str):
        return self.id[f"partnership/{key_a}--{key_b}"]

    def source(self, source_id: str):
        return self.id[f"source/{source_id}"]

    def concept(self, scheme: str, name: str):
        """A concept of the vocabulary's schemes (kind, status, precision, focus, verdict)."""
        return self.vocab_id[f"{scheme}/{name}"]

    def scheme(self, scheme: str):
        return self.vocab_id[scheme]
