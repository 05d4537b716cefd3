"""Names for IRIs on the pages: labels in the page's language, links, prefixed names.

A page shows a resource by its label in the reader's language (else English, German,
untagged, any), links to it at this server's public IRI (`AppContext.public`), and
shows IRIs of well-known vocabularies as prefixed names.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rdflib import BNode, Graph, Literal
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from twinning_kg.vocab import GEO, GSP, PROV, SCHEMA
from twinning_kg.web.context import AppContext
from twinning_kg.web.i18n import format_date
from twinning_kg.web.site_queries import LABEL_PROPS, tw

PREFIXES = {
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "xsd": str(XSD),
    "skos": str(SKOS),
    "dcterms": str(DCTERMS),
    "foaf": str(FOAF),
    "prov": str(PROV),
    "schema": str(SCHEMA),
    "geo": str(GEO),
    "geosparql": str(GSP),
    "dcat": str(DCAT),
    "wd": "http://www.wikidata.org/entity/",
    "wdt": "http://www.wikidata.org/prop/direct/",
    "oa": "http://www.w3.org/ns/oa#",
    "void": "http://rdfs.org/ns/void#",
}
# Datatypes of calendar values: shown as the page's language writes dates.
CALENDAR_TYPES = frozenset({XSD.date, XSD.gYearMonth, XSD.gYear, XSD.dateTime})


def pick(values: Iterable[Literal], lang: str) -> Literal | None:
    """The literal in `lang`, else English, else German, else untagged, else any (stable)."""
    ordered = sorted(values, key=lambda v: (v.language or "", str(v)))
    for wanted in (lang, "en", "de", None):
        for value in ordered:
            if (value.language or None) == wanted:
                return value
    return ordered[0] if ordered else None


def curie(iri: str) -> str:
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(iri) > len(ns):
            return f"{prefix}:{iri[len(ns) :]}"
    return iri


@dataclass
class Link:
    iri: str
    href: str
    text: str
    ours: bool = False


@dataclass
class Value:
    """One object of a statement: a link, or a literal shown with its language/datatype;
    `when` holds the lexical form of a calendar value (for `<time datetime>`)."""

    text: str
    link: Link | None = None
    lang: str | None = None
    datatype: str | None = None
    when: str | None = None


class Labeller:
    """Turns IRIs into links with labels in the requested language."""

    def __init__(self, ctx: AppContext, lang: str, *graphs: Graph) -> None:
        self.ctx, self.lang = ctx, lang
        self.labels: dict[Node, list[Literal]] = defaultdict(list)
        self.partners: dict[Node, set[Node]] = defaultdict(set)
        for graph in graphs:
            self.add(graph)

    def add(self, graph: Graph) -> None:
        for prop in LABEL_PROPS:
            for s, o in graph.subject_objects(prop):
                if isinstance(o, Literal) and o not in self.labels[s]:
                    self.labels[s].append(o)
        # Imported partnerships carry no label of their own: name them after their partners.
        for s, o in graph.subject_objects(tw(self.ctx, "partner")):
            self.partners[s].add(o)

    def label(self, node: Node) -> str:
        best = pick(self.labels.get(node, ()), self.lang)
        if best is not None:
            return str(best)
        partners = self.partners.get(node)
        if partners and len(partners) == 2 and all(self.labels.get(p) for p in partners):
            return " – ".join(sorted(self.label(p) for p in partners))
        iri = str(node)
        if iri.startswith(self.ctx.base_iri):
            return iri[len(self.ctx.base_iri) :]
        return curie(iri)

    def href(self, iri: str) -> str:
        return self.ctx.public(iri)

    def link(self, node: Node) -> Link:
        iri = str(node)
        return Link(
            iri=iri, href=self.href(iri), text=self.label(node), ours=iri.startswith(self.ctx.base_iri)
        )

    def value(self, node: Node) -> Value:
        if isinstance(node, Literal):
            dt = str(node.datatype) if node.datatype else None
            if node.datatype in CALENDAR_TYPES:
                text = format_date(str(node), None, self.lang)
                return Value(text=text, datatype=curie(str(dt)), when=str(node))
            return Value(text=str(node), lang=node.language, datatype=curie(dt) if dt else None)
        if isinstance(node, BNode):
            return Value(text="[…]")
        return Value(text=self.label(node), link=self.link(node))
