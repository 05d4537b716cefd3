"""DCAT-AP 3 catalog (conforming to DCAT-AP.de 3.0 too) and VoID description of a release,
computed from its graph.

The build calls `describe(dataset, files, settings, stamp)` after writing the dumps and
writes the two graphs it returns as `catalog.ttl` and `void.ttl` into the release.

Why it is split this way: what a person must decide (titles, descriptions, keywords,
licences, publisher, themes, which external datasets we link to) is Turtle in
`publication/*.ttl`, parsed with publicID = base IRI like every other source; everything
that can be counted or measured (distribution URLs, byte sizes, SHA-256 sums, temporal
coverage, triples, entities, partitions, vocabularies, named-graph subsets, linkset
sizes) is computed here, so the description can never drift from the data. What belongs
to the release rather than to a person (`dct:issued`, `dct:modified`, `dcat:version`: the
`stamp`) and to the deployment (the contact point, from the settings) is set here too;
the hand-written Turtle may not state the first three (docs/publication.md).

Each output graph is the part of (hand-written + computed) triples reachable from its
root (`{base}catalog`, `{base}void`). That is how unused hand-written pieces drop out
without special cases: a distribution for a dump the build did not write, a dataset
named after a graph the release does not hold (`{base}dataset/X` needs `{base}graph/X`),
a linkset with no links. No blank nodes anywhere and no clock: the same inputs give the
same triples.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rdflib import BNode, Dataset, Graph, Literal, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.term import Node

from twinning_kg.config import Settings, publication_dir
from twinning_kg.loading import parse_file
from twinning_kg.release import DUMP_STEM, Stamp
from twinning_kg.vocab import DCAT, DCTERMS, OWL, RDF, RDFS, SD, SPDX, VCARD, VOID, XSD, tw

# Relative to the base IRI (docs/architecture.md, "Catalog and VoID").
CATALOG = "catalog"
VOID_ROOT = "void"
MAIN_DATASET = "dataset/kassel"
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
SHA256 = SPDX["checksumAlgorithm_sha256"]
CONTACT = CATALOG + "#contact"
# Set by the build from the release (`Stamp`); hand-written values would go stale. owl:versionInfo
# is DCAT-AP.de 3.0's deprecated spelling of dcat:version.
RELEASE_PROPERTIES = (DCTERMS.issued, DCTERMS.modified, DCAT.version, OWL.versionInfo)
_SAFE_LOCAL = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
Files = Mapping[str, Mapping[str, Any]]  # dump name -> {"bytes", "sha256", "media_type"}


class PublicationError(Exception):
    """The hand-written parts and the release disagree; the message says how to fix it.

    `build.write_release` turns it into a BuildError: a message, and nothing written."""


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


def load_parts(settings: Settings) -> Graph:
    """The hand-written Turtle in `publication/`; a broken file names its line (SourceError)."""
    directory = publication_dir(settings)
    files = sorted(directory.glob("*.ttl"))
    if not files:
        raise PublicationError(f"{directory}: no *.ttl files with the catalog's hand-written parts")
    parts = Graph()
    for path in files:
        graph = parse_file(path, settings.base_iri)
        for prefix, ns in graph.namespaces():
            parts.bind(prefix, ns, override=False)
        blank = next((t for t in graph if any(isinstance(term, BNode) for term in t)), None)
        if blank is not None:
            raise PublicationError(
                f"{path}: blank node in {blank!r}; give every node an IRI so the catalog is deterministic"
            )
        stated = next((t for prop in RELEASE_PROPERTIES for t in graph.triples((None, prop, None))), None)
        if stated is not None:
            raise PublicationError(
                f"{path}: <{stated[0]}> states {graph.qname(stated[1])}; remove it: issue and "
                "modification dates and dcat:version come from the release (docs/publication.md)"
            )
        parts += graph
    return parts


def describe(dataset: Dataset, files: Files, settings: Settings, stamp: Stamp) -> dict[str, Graph]:
    """The release's catalog and VoID (see module docstring).

    `files`: {dump file name: {"bytes", "sha256", "media_type"}} for every dump written;
    `stamp`: the release's content version and the date of its sources.
    """
    parts = load_parts(settings)
    stats = statistics(dataset, settings.base_iri + "id/")
    return {
        "catalog.ttl": catalog_graph(parts, dataset, stats, files, settings, stamp),
        "void.ttl": void_graph(parts, dataset, stats, files, settings),
    }


# --- catalog --------------------------------------------------------------------------------


def catalog_graph(
    parts: Graph, dataset: Dataset, stats: Statistics, files: Files, settings: Settings, stamp: Stamp
) -> Graph:
    """DCAT-AP 3 catalog: hand-written parts plus distributions, temporal coverage, the
    release's dates and version, and the deployment's contact point."""
    base = settings.base_iri
    work = _copy(parts)
    catalog = URIRef(base + CATALOG)
    main = URIRef(base + MAIN_DATASET)
    for node, cls in ((catalog, DCAT.Catalog), (main, DCAT.Dataset)):
        if (node, RDF.type, cls) not in work:
            raise PublicationError(f"publication/*.ttl must describe <{node}> as a <{cls}>")
    graph_names = {str(g)[len(base + "graph/") :] for g in stats.graphs if str(g).startswith(base + "graph/")}
    kept = []
    for ds in sorted(set(work.subjects(RDF.type, DCAT.Dataset))):
        name = str(ds)[len(base + "dataset/") :] if str(ds).startswith(base + "dataset/") else None
        if ds == main or name in graph_names:
            kept.append(ds)
        else:  # a dataset for a graph this release does not hold
            work.remove((ds, None, None))
            work.remove((None, None, ds))
    for ds in kept:
        _add_temporal(work, dataset, ds, base)
    for node in (catalog, *kept):
        _add_stamp(work, node, stamp)
    _set_contact(work, URIRef(base + CONTACT), settings)
    for name in sorted(files):
        _add_distribution(work, main, name, files[name], base)
    return _reachable(work, catalog, stop={URIRef(base + VOID_ROOT)})


def _add_stamp(work: Graph, node: URIRef, stamp: Stamp) -> None:
    """The release's date as issue and modification date (DCAT 3 §11: a version's release
    date is its dct:issued), and its content version as dcat:version."""
    when = Literal(stamp.date, datatype=XSD.dateTime)
    work.add((node, DCTERMS.issued, when))
    work.add((node, DCTERMS.modified, when))
    work.add((node, DCAT.version, Literal(stamp.version)))


def _set_contact(work: Graph, contact: URIRef, settings: Settings) -> None:
    """The deployment's contact (settings) replaces the default's name, e-mail and web page."""
    if (contact, RDF.type, VCARD.Kind) not in work:
        raise PublicationError(f"publication/*.ttl must describe the contact point <{contact}> "
                               "as a vcard:Kind")
    if settings.contact_name is not None:
        work.set((contact, VCARD.fn, Literal(settings.contact_name.strip())))
    if settings.contact_email is not None:
        work.set((contact, VCARD.hasEmail, URIRef("mailto:" + settings.contact_email)))
    if settings.contact_url is not None:
        work.set((contact, VCARD.hasURL, URIRef(settings.contact_url)))


def _add_temporal(work: Graph, dataset: Dataset, ds: URIRef, base: str) -> None:
    """dct:temporal from the earliest tw:startDate in the dataset's graph, unless hand-written."""
    if (ds, DCTERMS.temporal, None) in work:
        return
    graph_iri = URIRef(base + "graph/" + str(ds).rsplit("/", 1)[-1])
    starts = [o for o in dataset.graph(graph_iri).objects(None, tw(base).startDate) if isinstance(o, Literal)]
    if not starts:
        return
    # Lexical order is chronological for the xsd:gYear/gYearMonth/date values the data uses.
    earliest = min(starts, key=lambda lit: (str(lit), str(lit.datatype)))
    period = URIRef(f"{ds}#temporal")
    work.add((ds, DCTERMS.temporal, period))
    work.add((period, RDF.type, DCTERMS.PeriodOfTime))
    work.add((period, DCAT.startDate, earliest))


def distribution_key(file_name: str) -> str:
    """`twinning-kg.ttl.gz` -> `ttl-gz` (the distribution's IRI is `{base}distribution/<key>`)."""
    stem = DUMP_STEM + "."
    if not file_name.startswith(stem) or "/" in file_name:
        raise PublicationError(f"{file_name}: dump names must look like {stem}<ext>[.gz]")
    return file_name[len(stem) :].replace(".", "-")


def _add_distribution(work: Graph, main: URIRef, name: str, info: Mapping[str, Any], base: str) -> None:
    dist = URIRef(base + "distribution/" + distribution_key(name))
    if (dist, RDF.type, DCAT.Distribution) not in work:
        raise PublicationError(
            f"publication/distributions.ttl has no <distribution/{distribution_key(name)}> "
            f"for the dump {name}; add its title, media type and format there"
        )
    media = URIRef(IANA_MEDIA_TYPES + str(info["media_type"]).split(";")[0].strip())
    stated = work.value(dist, DCAT.compressFormat if name.endswith(".gz") else DCAT.mediaType)
    if stated != media:
        raise PublicationError(
            f"{name}: the build wrote it as {info['media_type']}, but publication/distributions.ttl "
            f"states {stated} for <distribution/{distribution_key(name)}>"
        )
    url = URIRef(base + "dumps/" + name)
    checksum = URIRef(f"{dist}#sha256")
    work.add((main, DCAT.distribution, dist))
    for prop in (DCAT.accessURL, DCAT.downloadURL):
        work.add((dist, prop, url))
    work.add((url, RDF.type, RDFS.Resource))  # the DCAT-AP shapes want the range typed
    work.add((dist, DCAT.byteSize, Literal(int(info["bytes"]), datatype=XSD.nonNegativeInteger)))
    work.add((dist, SPDX.checksum, checksum))
    work.add((checksum, RDF.type, SPDX.Checksum))
    work.add((checksum, SPDX.algorithm, SHA256))
    work.add((checksum, SPDX.checksumValue, Literal(str(info["sha256"]).lower(), datatype=XSD.hexBinary)))


# --- VoID -----------------------------------------------------------------------------------


def void_graph(parts: Graph, dataset: Dataset, stats: Statistics, files: Files, settings: Settings) -> Graph:
    """VoID: statistics, partitions, vocabularies, named-graph subsets and linksets."""
    base = settings.base_iri
    work = _copy(parts)
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
    return _reachable(work, root, stop={URIRef(base + CATALOG), *examples})


def linkset_sizes(parts: Graph, dataset: Dataset) -> dict[URIRef, int]:
    """Each hand-written void:Linkset -> distinct (s, linkPredicate, o) with o in the target's URI space."""
    sizes: dict[URIRef, int] = {}
    for linkset in sorted(set(parts.subjects(RDF.type, VOID.Linkset))):
        predicate = parts.value(linkset, VOID.linkPredicate)
        target = parts.value(linkset, VOID.objectsTarget)
        space = parts.value(target, VOID.uriSpace) if target is not None else None
        if predicate is None or space is None:
            raise PublicationError(
                f"<{linkset}>: a linkset needs void:linkPredicate and void:objectsTarget with a void:uriSpace"
            )
        links = dataset.triples((None, predicate, None))  # the union: each distinct triple once
        sizes[URIRef(linkset)] = sum(1 for _, _, o in links if str(o).startswith(str(space)))
    return sizes


def _prefixes(dataset: Dataset, settings: Settings) -> dict[str, str]:
    """namespace -> prefix for readable partition IRIs: what our source files declare wins
    over rdflib's defaults (which, e.g., bind `geo:` to GeoSPARQL); deterministic."""
    from twinning_kg.build import source_prefixes  # the build's reading of the @prefix lines

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


# --- helpers --------------------------------------------------------------------------------


def _count(value: int) -> Literal:
    return Literal(value, datatype=XSD.integer)


def _copy(graph: Graph) -> Graph:
    out = Graph()
    for prefix, ns in graph.namespaces():
        out.bind(prefix, ns, override=True)
    for triple in graph:
        out.add(triple)
    return out


def _reachable(graph: Graph, root: URIRef, stop: Iterable[URIRef] = ()) -> Graph:
    """The triples whose subject can be reached from `root` by following objects.

    `stop` nodes are linked to but not described (the other document's root)."""
    out = Graph()
    for prefix, ns in graph.namespaces():
        out.bind(prefix, ns, override=True)
    stop_set = set(stop)
    seen: set[Node] = {root}
    todo: list[Node] = [root]
    while todo:
        node = todo.pop()
        for p, o in graph.predicate_objects(node):
            out.add((node, p, o))
            if isinstance(o, URIRef) and o not in seen and o not in stop_set:
                seen.add(o)
                todo.append(o)
    return out

