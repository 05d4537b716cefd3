"""VoID description of a release, computed from its graph: statistics, class and property
partitions, vocabularies, named-graph subsets and linkset sizes (VoID §4-§6).

Everything that can be counted is counted here, from the data itself, so the description
never drifts from it; the hand-written parts (`catalog/void.ttl`) say only what a person
decides (titles, the linked datasets, example resources).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.term import Node

from twinning_kg.config import Settings
from twinning_kg.graph.prefixes import source_prefixes
from twinning_kg.release.catalog_parts import CATALOG, VOID_ROOT, CatalogError, Files, copy_graph, reachable
from twinning_kg.vocab import RDF, SD, VOID, XSD

_SAFE_LOCAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass
class Statistics:
    """What VoID says about a dataset, counted in one pass over its distinct triples."""

    triples: int = 0
    entities: int = 0
    subjects: int = 0
    objects: int = 0
    classes: dict[URIRef, int] = field(default_factory=dict)  # class -> distinct instances
    properties: dict[URIRef, int] = field(default_factory=dict)  # predicate -> triples
    vocabularies: set[URIRef] = field(default_factory=set)  # namespace IRIs used
    graphs: dict[URIRef, int] = field(default_factory=dict)  # named graph -> triples in it


def statistics(dataset: Dataset, uri_space: str) -> Statistics:
    """Count the union of all graphs (each distinct triple once), as SPARQL sees it.

    Entities follow VoID: IRIs within `uri_space` that are described (are subjects).
    """
    subjects: set[Node] = set()
    objects: set[Node] = set()
    instances: dict[URIRef, set[Node]] = defaultdict(set)
    properties: Counter[URIRef] = Counter()
    triples = 0
    for s, p, o in dataset.triples((None, None, None)):
        triples += 1
        subjects.add(s)
        objects.add(o)
        properties[p] += 1
        if p == RDF.type and isinstance(o, URIRef):
            instances[o].add(s)
    stats = Statistics(
        triples=triples,
        entities=sum(1 for s in subjects if isinstance(s, URIRef) and str(s).startswith(uri_space)),
        subjects=len(subjects),
        objects=len(objects),
        classes={cls: len(members) for cls, members in instances.items()},
        properties=dict(properties),
    )
    stats.vocabularies = {namespace(iri) for iri in [*stats.properties, *stats.classes]}
    for graph in dataset.graphs():
        if graph.identifier != DATASET_DEFAULT_GRAPH_ID and len(graph):
            stats.graphs[URIRef(graph.identifier)] = len(graph)
    return stats


def namespace(iri: URIRef) -> URIRef:
    """The namespace an IRI's term belongs to: up to the last '#', else the last '/'
    (else the last ':', for URNs)."""
    text = str(iri)
    for separator in "#/:":
        if separator in text:
            return URIRef(text[: text.rfind(separator) + 1])
    return URIRef(text)


def void_graph(parts: Graph, dataset: Dataset, stats: Statistics, files: Files, settings: Settings) -> Graph:
    """VoID: statistics, partitions, vocabularies, named-graph subsets and linksets."""
    base = settings.base_iri
    work = copy_graph(parts)
    root = URIRef(base + VOID_ROOT)
    add = work.add
    add((root, RDF.type, VOID.Dataset))
    add((root, VOID.sparqlEndpoint, URIRef(base + "sparql")))
    add((root, VOID.uriSpace, Literal(base + "id/")))
    for name in sorted(files):
        add((root, VOID.dataDump, URIRef(base + "dumps/" + name)))
    for prop, value in (
        (VOID.triples, stats.triples),
        (VOID.entities, stats.entities),
        (VOID.distinctSubjects, stats.subjects),
        (VOID.distinctObjects, stats.objects),
        (VOID.classes, len(stats.classes)),
        (VOID.properties, len(stats.properties)),
    ):
        add((root, prop, _count(value)))
    for vocabulary in sorted(stats.vocabularies):
        add((root, VOID.vocabulary, vocabulary))
    # Example resources must exist in the graph, or a linker following them hits a 404.
    for example in list(work.objects(root, VOID.exampleResource)):
        if (example, None, None) not in dataset:
            work.remove((root, VOID.exampleResource, example))
    prefixes = _prefixes(dataset, settings)
    for cls, entities in sorted(stats.classes.items()):
        part = URIRef(base + "void/class/" + _slug(cls, prefixes))
        add((root, VOID.classPartition, part))
        add((part, VOID["class"], cls))
        add((part, VOID.entities, _count(entities)))
    for prop, triples in sorted(stats.properties.items()):
        part = URIRef(base + "void/property/" + _slug(prop, prefixes))
        add((root, VOID.propertyPartition, part))
        add((part, VOID.property, prop))
        add((part, VOID.triples, _count(triples)))
    for graph_iri, triples in sorted(stats.graphs.items()):
        local = str(graph_iri)[len(base + "graph/") :] if str(graph_iri).startswith(base + "graph/") else None
        subset = URIRef(base + "void/graph/" + (local or quote(str(graph_iri), safe="")))
        add((root, VOID.subset, subset))
        add((subset, RDF.type, VOID.Dataset))
        add((subset, SD.name, graph_iri))
        add((subset, VOID.triples, _count(triples)))
    for linkset, count in linkset_sizes(work, dataset).items():
        if count:
            add((root, VOID.subset, linkset))
            add((linkset, VOID.subjectsTarget, root))
            add((linkset, VOID.triples, _count(count)))
    # Example resources are described by the data, not here (the catalog may type them).
    examples = set(work.objects(root, VOID.exampleResource))
    return reachable(work, root, stop={URIRef(base + CATALOG), *examples})


def linkset_sizes(parts: Graph, dataset: Dataset) -> dict[URIRef, int]:
    """Each hand-written void:Linkset -> distinct (s, linkPredicate, o) with o in the target's URI space."""
    sizes: dict[URIRef, int] = {}
    for linkset in sorted(set(parts.subjects(RDF.type, VOID.Linkset))):
        predicate = parts.value(linkset, VOID.linkPredicate)
        target = parts.value(linkset, VOID.objectsTarget)
        space = parts.value(target, VOID.uriSpace) if target is not None else None
        if predicate is None or space is None:
            raise CatalogError(
                f"<{linkset}>: a linkset needs void:linkPredicate and void:objectsTarget with a void:uriSpace"
            )
        links = dataset.triples((None, predicate, None))  # the union: each distinct triple once
        sizes[URIRef(linkset)] = sum(1 for _, _, o in links if str(o).startswith(str(space)))
    return sizes


def _prefixes(dataset: Dataset, settings: Settings) -> dict[str, str]:
    """namespace -> prefix for readable partition IRIs: what our source files declare wins
    over rdflib's defaults (which, e.g., bind `geo:` to GeoSPARQL); deterministic."""
    prefixes = {str(ns): prefix for prefix, ns in sorted(dataset.namespaces()) if prefix}
    prefixes.update({ns: prefix for prefix, ns in sorted(source_prefixes(settings).items()) if prefix})
    return prefixes


def _slug(iri: URIRef, prefixes: Mapping[str, str]) -> str:
    """A readable, stable path segment for a class or property: `prefix:local` when the
    sources bound a prefix (namespace -> prefix) for its namespace, else the IRI percent-encoded."""
    ns = str(namespace(iri))
    local = str(iri)[len(ns) :]
    prefix = prefixes.get(ns)
    if prefix and _SAFE_LOCAL.match(local) and _SAFE_LOCAL.match(prefix):
        return f"{prefix}:{local}"
    return quote(str(iri), safe="")


def _count(value: int) -> Literal:
    return Literal(value, datatype=XSD.integer)
