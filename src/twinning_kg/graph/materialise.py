"""Derive the shortcuts the data states only implicitly: lifecycle status and dates, then
`tw:twinnedWith` both ways.

The build, `validate`, the importers and the claims queries all run this on the loaded
sources, so every stage after it sees the same graph.
"""

from __future__ import annotations

from typing import Any

from rdflib import Graph, URIRef
from rdflib.graph import DATASET_DEFAULT_GRAPH_ID
from rdflib.namespace import RDF

from twinning_kg.config import Settings
from twinning_kg.graph import lifecycle
from twinning_kg.vocab import tw


def materialise(dataset: Any, settings: Settings) -> int:
    """Derive the shortcuts: status and dates from lifecycle events, then `tw:twinnedWith`.

    `lifecycle.derive` adds each partnership's status shortcuts from its events. Then
    `tw:twinnedWith` goes both ways between the two partners of every `tw:Partnership`
    that is not a `tw:ProvisionalPartnership` (a link resting on weak sources only is not
    stated as a P190 fact). The links go into the graph that types the partnership, so
    per-graph counts and provenance stay right. A partnership without exactly two
    distinct IRI partners is left alone: the shapes report it. Returns how many triples
    were new.
    """
    vocab = tw(settings.vocabulary)
    added = lifecycle.derive(dataset, settings)
    provisional = {s for s, _, _, _ in dataset.quads((None, RDF.type, vocab.ProvisionalPartnership, None))}
    for partnership, _, _, context in list(dataset.quads((None, RDF.type, vocab.Partnership, None))):
        if partnership in provisional:
            continue
        partners = {o for _, _, o, _ in dataset.quads((partnership, vocab.partner, None, None))}
        if len(partners) != 2 or not all(isinstance(p, URIRef) for p in partners):
            continue
        graph = _graph_of(dataset, context)
        first, second = sorted(partners)
        for a, b in ((first, second), (second, first)):
            triple = (a, vocab.twinnedWith, b)
            if triple not in graph:
                graph.add(triple)
                added += 1
    return added


def _graph_of(dataset: Any, context: Any) -> Graph:
    if isinstance(context, Graph):
        return context
    if context is None or context == DATASET_DEFAULT_GRAPH_ID:
        # rdflib >= 7.1 calls it default_graph (default_context is deprecated)
        return dataset.default_graph if hasattr(dataset, "default_graph") else dataset.default_context
    return dataset.graph(context)
