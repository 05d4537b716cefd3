"""The hand-written parts of the catalog and VoID (`catalog/*.ttl`) and what both
descriptions share: their root IRIs, their error, and how a description is cut from the
working graph (`reachable`).

What a person decides (titles, descriptions, keywords, licences, publisher, themes, which
external datasets we link to) is Turtle in `catalog/*.ttl`, parsed with publicID = base IRI
like every other source. What belongs to the release (`dct:issued`, `dct:modified`,
`dcat:version`) is set by the build; the hand-written Turtle may not state it
(docs/publication.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rdflib import BNode, Graph, URIRef
from rdflib.term import Node

from twinning_kg.config import Settings, catalog_dir
from twinning_kg.sources.loading import parse_file
from twinning_kg.vocab import DCAT, DCTERMS, OWL, SPDX

# Relative to the base IRI (docs/architecture.md, "Catalog and VoID").
CATALOG = "catalog"
VOID_ROOT = "void"
MAIN_DATASET = "dataset/"  # + the project's city key (Settings.city_key)
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"
SHA256 = SPDX["checksumAlgorithm_sha256"]
CONTACT = CATALOG + "#contact"
# Set by the build from the release (`Stamp`); hand-written values would go stale. owl:versionInfo
# is DCAT-AP.de 3.0's deprecated spelling of dcat:version.
RELEASE_PROPERTIES = (DCTERMS.issued, DCTERMS.modified, DCAT.version, OWL.versionInfo)
Files = Mapping[str, Mapping[str, Any]]  # dump name -> {"bytes", "sha256", "media_type"}


class CatalogError(Exception):
    """The hand-written parts and the release disagree; the message says how to fix it.

    `builder.write_release` turns it into a BuildError: a message, and nothing written."""


def load_parts(settings: Settings) -> Graph:
    """The hand-written Turtle in `catalog/`; a broken file names its line (SourceError)."""
    directory = catalog_dir(settings)
    files = sorted(directory.glob("*.ttl"))
    if not files:
        raise CatalogError(f"{directory}: no *.ttl files with the catalog's hand-written parts")
    parts = Graph()
    for path in files:
        graph = parse_file(path, settings.base_iri)
        for prefix, ns in graph.namespaces():
            parts.bind(prefix, ns, override=False)
        blank = next((t for t in graph if any(isinstance(term, BNode) for term in t)), None)
        if blank is not None:
            raise CatalogError(
                f"{path}: blank node in {blank!r}; give every node an IRI so the catalog is deterministic"
            )
        stated = next((t for prop in RELEASE_PROPERTIES for t in graph.triples((None, prop, None))), None)
        if stated is not None:
            raise CatalogError(
                f"{path}: <{stated[0]}> states {graph.qname(stated[1])}; remove it: issue and "
                "modification dates and dcat:version come from the release (docs/publication.md)"
            )
        parts += graph
    return parts


def copy_graph(graph: Graph) -> Graph:
    out = Graph()
    for prefix, ns in graph.namespaces():
        out.bind(prefix, ns, override=True)
    for triple in graph:
        out.add(triple)
    return out


def reachable(graph: Graph, root: URIRef, stop: Iterable[URIRef] = ()) -> Graph:
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
