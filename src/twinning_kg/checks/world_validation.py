"""SHACL validation at world scale: a fast engine for the verdict, pyshacl for the report.

pyshacl (the project's reference, `twinning_kg.checks.validation`) needs 30-50 s for the world
crawl (~150,000 triples, ~27,000 focus nodes) on this 2-core machine, and minutes for
ten times that; pyshacl-turbo evaluates the same shapes graph in Rust in a few seconds
(measured figures: bench/RESULTS.md). So an import asks pyshacl-turbo first, over the
same union graph with the same options. When the data conforms that is the answer.
When it does not, the reference engine runs too and its report is the one shown, with
file names, so a failing import reads exactly like a failing `twinning-kg build`; the
extra seconds are only spent on data that is being rejected anyway.

Why trust the fast verdict: tests/test_import.py checks that both engines return the
same set of results (focus node, path, component, shape, value, severity) on data
where every kind of shape fires, and that both agree the real crawl conforms.
"""

from __future__ import annotations

from typing import Any

import pyoxigraph as ox
import pyshacl_turbo
from pyshacl_turbo.rdf import Input
from rdflib import Graph

from twinning_kg.checks import validation
from twinning_kg.config import Settings
from twinning_kg.graph.quads import oxigraph_quads
from twinning_kg.sources.loading import Loaded

# Options shared by both engines: what `twinning_kg.checks.validation.validate` uses.
SHACL_OPTIONS: dict[str, Any] = {
    "inference": "none",
    "advanced": False,
    "allow_warnings": True,
    "abort_on_first": False,
}


def fast_input(loaded: Loaded) -> Any:
    """The union of all graphs in the form pyshacl-turbo reads fastest.

    N-Triples written by Oxigraph straight from the dataset's quads, handed over as
    pyshacl-turbo's own `Input` (parsed in Rust): at 1.5 million triples this saves the
    better part of a minute over copying the union into an rdflib Graph first. Not an
    Oxigraph Store: a Store normalises derived datatypes (xsd:nonNegativeInteger becomes
    xsd:integer), which would change what `sh:datatype` sees.
    """
    triples = (ox.Triple(q.subject, q.predicate, q.object) for q in oxigraph_quads(loaded.dataset))
    text = ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES).decode("utf-8")
    return Input(text, "nt", None, {})


def fast_results(loaded: Loaded, shapes: Graph) -> tuple[bool, Graph]:
    """(conforms, results graph) from pyshacl-turbo."""
    conforms, results, _ = pyshacl_turbo.validate(fast_input(loaded), shacl_graph=shapes, **SHACL_OPTIONS)
    return bool(conforms), results


def validate(loaded: Loaded, settings: Settings) -> tuple[validation.Report, str]:
    """(report, engine name): the fast verdict when it conforms, else pyshacl's full report."""
    shapes = validation.load_shapes(settings)
    conforms, _ = fast_results(loaded, shapes)
    if conforms:
        return validation.Report(conforms=True), "pyshacl-turbo"
    return validation.validate(loaded, settings, shapes=shapes), "pyshacl"
