"""rdflib datasets <-> Oxigraph quads: the one conversion every later stage uses.

The release writes its dumps and store from these quads, the world-scale checks hand them
to pyshacl-turbo, and the catalog reads the canonical N-Quads back into rdflib.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyoxigraph as ox
from rdflib import BNode, ConjunctiveGraph, Dataset, Graph, Literal, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.term import Node

_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


class UnpublishableTerm(Exception):
    """A term of the dataset that has no RDF 1.1 form Oxigraph accepts."""


def oxigraph_quads(data: Any) -> Iterator[ox.Quad]:
    """Quads of an rdflib Dataset/ConjunctiveGraph/Graph, an Oxigraph Dataset/Store, or an
    iterable of Oxigraph Quads/Triples (triples go to the default graph)."""
    if isinstance(data, ox.Store):
        return data.quads_for_pattern(None, None, None, None)
    if isinstance(data, ox.Dataset):
        return iter(data)  # no Python-level loop: Oxigraph consumes it directly
    if isinstance(data, Graph):
        return _rdflib_quads(data)
    return (ox.Quad(i.subject, i.predicate, i.object) if isinstance(i, ox.Triple) else i for i in data)


def _rdflib_quads(graph: Graph) -> Iterator[ox.Quad]:
    """rdflib's terms are str subclasses: handing them to Oxigraph directly is the fastest
    conversion measured (faster than caching, which pays rdflib's slow term hashing)."""
    try:
        if isinstance(graph, ConjunctiveGraph):  # rdflib's Dataset is one too
            for s, p, o, g in graph.quads((None, None, None, None)):
                gid = g.identifier if isinstance(g, Graph) else g
                default = gid is None or gid == DATASET_DEFAULT_GRAPH_ID
                graph_name = ox.DefaultGraph() if default else _term(gid)
                yield ox.Quad(_term(s), ox.NamedNode(p), _term(o), graph_name)
        else:
            for s, p, o in graph:
                yield ox.Quad(_term(s), ox.NamedNode(p), _term(o))
    except (TypeError, ValueError) as exc:
        raise UnpublishableTerm(f"cannot publish a term of the dataset: {exc}") from exc


def _term(node: Node) -> Any:
    if isinstance(node, URIRef):
        return ox.NamedNode(node)
    if isinstance(node, Literal):
        if node.language:
            return ox.Literal(node, language=node.language)
        if node.datatype is not None:
            return ox.Literal(node, datatype=ox.NamedNode(node.datatype))
        return ox.Literal(node)
    if isinstance(node, BNode):
        return ox.BlankNode(node)
    raise UnpublishableTerm(f"cannot publish RDF term {node!r} ({type(node).__name__})")


def rdflib_dataset(nquads: bytes) -> Dataset:
    """N-Quads -> rdflib Dataset through Oxigraph's parser (several times faster than rdflib's)."""
    dataset = Dataset(default_union=True)
    cache: dict[Any, Node] = {}

    def term(node: Any) -> Node:
        found = cache.get(node)
        if found is not None:
            return found
        if isinstance(node, ox.NamedNode):
            found = URIRef(node.value)
        elif isinstance(node, ox.BlankNode):
            found = BNode(node.value)
        elif isinstance(node, ox.Literal):
            datatype = node.datatype.value
            if node.language:
                found = Literal(node.value, lang=node.language)
            else:
                found = Literal(node.value, datatype=None if datatype == _XSD_STRING else URIRef(datatype))
        elif isinstance(node, ox.DefaultGraph):
            found = DATASET_DEFAULT_GRAPH_ID
        else:
            raise UnpublishableTerm(f"cannot convert {node!r}")
        if not isinstance(node, ox.Literal) or len(cache) < 1_000_000:
            cache[node] = found
        return found

    graphs: dict[Any, Graph] = {}

    def quads() -> Iterator[tuple[Node, Node, Node, Graph]]:
        for q in ox.parse(nquads, format=ox.RdfFormat.N_QUADS):
            graph = graphs.get(q.graph_name)
            if graph is None:
                graph = graphs[q.graph_name] = dataset.graph(term(q.graph_name))
            yield term(q.subject), term(q.predicate), term(q.object), graph

    dataset.addN(quads())
    return dataset


# --- canonical form -----------------------------------------------------------------------
