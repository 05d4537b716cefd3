"""Run the SHACL shapes over the loaded graph and turn pyshacl's results into a readable report.

The data graph is the *union* of all named graphs (ontology + data): pyshacl validates each
named graph of a Dataset separately, but `sh:targetClass tw:Place` must see the data and
the ontology's `rdfs:subClassOf` together, and `sh:class` checks need the concept schemes.
No inference: the shapes are written against the asserted triples plus subclass axioms,
which pyshacl follows for targets and `sh:class` on its own.

Each result names its focus node, path, message (en and de), severity, the shape that fired
and the source file(s) that stated the focus node, so a data author can go straight to
the line to fix.

SPARQL-based constraints are run here in bulk, one query per constraint over the whole
graph, instead of by pyshacl: pyshacl re-parses and runs the query once per focus node
(~50 ms each), which would take many minutes over the ~17k partnerships of the world
graph. The bulk query is the constraint's own SELECT with `$this` left free and `$PATH`
replaced by the shape's path, its rows kept for the shape's target nodes — the same
results as pre-binding `$this`, provided the query binds `$this` in a triple pattern (ours
do). Constraints that do not fit (other pre-bound variables, complex paths, shapes without
targets of their own) stay with pyshacl.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyshacl import validate as shacl_validate
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.collection import Collection
from rdflib.namespace import RDF, RDFS, SH
from rdflib.term import Node

from twinning_kg.config import Settings
from twinning_kg.sources.loading import LayoutProblem, Loaded, parse_file

SEVERITY_NAMES = {SH.Violation: "Violation", SH.Warning: "Warning", SH.Info: "Info"}
TARGETS = (SH.targetNode, SH.targetClass, SH.targetSubjectsOf, SH.targetObjectsOf)
PRE_BOUND = re.compile(r"\$[A-Za-z_]")  # $this, $PATH, $shapesGraph, … (not a regex's "$")


@dataclass(frozen=True)
class Result:
    """One SHACL validation result, flattened to strings for printing and JSON."""

    focus: str
    path: str | None
    severity: str
    message_en: str | None
    message_de: str | None
    shape: str | None
    component: str | None
    value: str | None
    files: tuple[str, ...] = ()
    focus_iri: str | None = None  # unabbreviated, for programs (tests, the build's log)
    shape_iri: str | None = None

    @property
    def message(self) -> str:
        return self.message_en or self.message_de or "(no message)"


@dataclass
class Report:
    """The outcome of one validation run."""

    conforms: bool
    results: list[Result] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(1 for r in self.results if r.severity == "Violation")

    def text(self) -> str:
        """Human-readable report: one block per result, grouped by focus node."""
        if self.conforms:
            return "conforms: the data satisfies every shape\n"
        lines = [f"does not conform: {len(self.results)} result(s)", ""]
        for r in self.results:
            lines.append(f"{r.severity}: {r.focus}")
            if r.path:
                lines.append(f"  path:    {r.path}")
            if r.value and r.value != r.focus:
                lines.append(f"  value:   {r.value}")
            lines.append(f"  message: {r.message}")
            if r.message_de and r.message_de != r.message:
                lines.append(f"  Meldung: {r.message_de}")
            if r.shape:
                lines.append(f"  shape:   {r.shape}" + (f" ({r.component})" if r.component else ""))
            lines.append(f"  file:    {', '.join(r.files) if r.files else '(unknown)'}")
            lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> str:
        body = {"conforms": self.conforms, "results": [asdict(r) for r in self.results]}
        return json.dumps(body, ensure_ascii=False, indent=2)


def load_shapes(settings: Settings) -> Graph:
    """All `shapes/*.ttl`, parsed like the ontology (relative IRIs under the vocabulary's base:
    the shapes are the kit's, shared by every city).

    A broken shapes file raises `SourceError` with file and line, as a data file does.
    """
    shapes = Graph()
    for path in sorted(settings.shapes_dir.glob("*.ttl")):
        part = parse_file(path, settings.vocabulary)
        for prefix, ns in part.namespaces():
            shapes.bind(prefix, ns, override=False)
        shapes += part
    return shapes


def union_graph(loaded: Loaded) -> Graph:
    """Every triple of every named graph in one plain Graph (see module docstring)."""
    graph = Graph()
    for prefix, ns in loaded.dataset.namespaces():
        graph.bind(prefix, ns, override=False)
    for s, p, o, _ in loaded.dataset.quads((None, None, None, None)):
        graph.add((s, p, o))
    return graph


def validate(
    loaded: Loaded, settings: Settings, shapes: Graph | None = None, *, bulk_sparql: bool = True
) -> Report:
    """Validate the union of `loaded` against the project's shapes (or `shapes`).

    `bulk_sparql=False` leaves every SPARQL constraint to pyshacl (the tests compare both).
    """
    shapes_graph = shapes if shapes is not None else load_shapes(settings)
    data = union_graph(loaded)
    for prefix, ns in shapes_graph.namespaces():  # so shapes print as tws:PlaceLabelShape
        data.bind(prefix, ns, override=False)
    bulk = bulk_constraints(shapes_graph) if bulk_sparql else []
    conforms, results_graph, _ = shacl_validate(
        data,
        shacl_graph=_without(shapes_graph, bulk),
        inference="none",
        advanced=False,
        allow_warnings=True,
        abort_on_first=False,
    )
    # pyshacl drops the language tag of SPARQL-constraint messages; recover it from the shapes
    tagged = {str(m): m.language for m in shapes_graph.objects(None, SH.message) if isinstance(m, Literal)}
    results = [_result(results_graph, node, data, loaded, tagged) for node in _result_nodes(results_graph)]
    for constraint in bulk:
        results += constraint.run(data, loaded)
    results += [_layout_result(problem) for problem in loaded.problems]
    results.sort(key=lambda r: (r.files, r.focus, r.path or "", r.shape or "", r.value or ""))
    conforms = bool(conforms) and not any(r.severity == "Violation" for r in results)
    return Report(conforms=conforms, results=results)


def _layout_result(problem: LayoutProblem) -> Result:
    """A file under data/ that was not loaded (loading.layout_problems), as a violation."""
    return Result(
        focus=str(problem.path),
        path=None,
        severity="Violation",
        message_en=problem.message_en,
        message_de=problem.message_de,
        shape=None,
        component=None,
        value=None,
        files=(str(problem.path),),
    )


@dataclass(frozen=True)
class BulkConstraint:
    """A SPARQL-based constraint run once over the whole data graph (see module docstring)."""

    shapes: Graph
    shape: URIRef
    constraint: Node
    path: URIRef | None
    query: str

    def run(self, data: Graph, loaded: Loaded) -> list[Result]:
        targets = _target_nodes(self.shapes, self.shape, data)
        if not targets:
            return []
        messages = list(self.shapes.objects(self.constraint, SH.message)) or list(
            self.shapes.objects(self.shape, SH.message)
        )
        severity = self.shapes.value(self.shape, SH.severity) or SH.Violation
        results = []
        for row in data.query(self.query):
            focus = row["this"]
            if focus not in targets:
                continue
            bindings = row.asdict()
            value = bindings.get("value")
            path = bindings.get("path", self.path)
            texts = {m.language: _fill(str(m), bindings) for m in messages if isinstance(m, Literal)}
            results.append(
                Result(
                    focus=_show(focus, data),
                    path=_show(path, data),
                    severity=SEVERITY_NAMES.get(severity, str(severity)),
                    message_en=texts.get("en") or texts.get(None),
                    message_de=texts.get("de"),
                    shape=_show(self.shape, data),
                    component=_show(SH.SPARQLConstraintComponent, data),
                    value=_show(value, data),
                    files=tuple(str(p) for p in _files(loaded, data, focus)),
                    focus_iri=str(focus) if isinstance(focus, URIRef) else None,
                    shape_iri=str(self.shape),
                )
            )
        return results


def bulk_constraints(shapes: Graph) -> list[BulkConstraint]:
    """The SPARQL constraints that can run in bulk (see module docstring)."""
    found = []
    for shape, constraint in shapes.subject_objects(SH.sparql):
        select = shapes.value(constraint, SH.select)
        path = shapes.value(shape, SH.path)
        if (
            select is None
            or not isinstance(shape, URIRef)
            or (constraint, SH.deactivated, Literal(True)) in shapes
            or (shape, SH.deactivated, Literal(True)) in shapes
            or shapes.value(constraint, SH.prefixes) is not None
            or (path is not None and not isinstance(path, URIRef))
            or not any((shape, t, None) in shapes for t in TARGETS)
            or any((shape, p, None) in shapes for p in (SH.target,))
        ):
            continue
        query = str(select).replace("$this", "?this")
        if path is not None:
            query = query.replace("$PATH", path.n3())
        if PRE_BOUND.search(query):
            continue
        found.append(BulkConstraint(shapes, shape, constraint, path, query))
    return found


def _without(shapes: Graph, bulk: list[BulkConstraint]) -> Graph:
    """The shapes graph with the bulk constraints deactivated for pyshacl."""
    if not bulk:
        return shapes
    copy = Graph()
    for prefix, ns in shapes.namespaces():
        copy.bind(prefix, ns)
    copy += shapes
    for constraint in bulk:
        copy.add((constraint.constraint, SH.deactivated, Literal(True)))
    return copy


def _target_nodes(shapes: Graph, shape: Node, data: Graph) -> set[Node]:
    """Focus nodes of a shape's core targets (classes include their rdfs:subClassOf* subclasses)."""
    nodes: set[Node] = set(shapes.objects(shape, SH.targetNode))
    for cls in shapes.objects(shape, SH.targetClass):
        for sub in _subclasses(data, cls):
            nodes.update(data.subjects(RDF.type, sub))
    for prop in shapes.objects(shape, SH.targetSubjectsOf):
        nodes.update(data.subjects(prop, None))
    for prop in shapes.objects(shape, SH.targetObjectsOf):
        nodes.update(data.objects(None, prop))
    return nodes


def _subclasses(data: Graph, cls: Node) -> Iterator[Node]:
    seen: set[Node] = set()
    todo = [cls]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        yield current
        todo.extend(data.subjects(RDFS.subClassOf, current))


def _fill(message: str, bindings: dict) -> str:
    """SHACL message templates: `{?var}` / `{$var}` take the row's value."""
    return re.sub(r"\{[?$](\w+)\}", lambda m: str(bindings.get(m.group(1), m.group(0))), message)


def _result_nodes(graph: Graph) -> Iterable[Node]:
    """Top-level results only: nested `sh:detail` results (from sh:node) explain these."""
    for report in graph.subjects(RDF.type, SH.ValidationReport):
        yield from graph.objects(report, SH.result)


def _result(graph: Graph, node: Node, data: Graph, loaded: Loaded, tagged: dict[str, str | None]) -> Result:
    focus = graph.value(node, SH.focusNode)
    shape = graph.value(node, SH.sourceShape)
    found = [m for m in graph.objects(node, SH.resultMessage) if isinstance(m, Literal)]
    messages = {m.language or tagged.get(str(m)): str(m) for m in found}
    severity = graph.value(node, SH.resultSeverity)
    return Result(
        focus=_show(focus, data),
        path=_show_path(graph, graph.value(node, SH.resultPath), data),
        severity=SEVERITY_NAMES.get(severity, str(severity)),
        message_en=messages.get("en") or messages.get(None),
        message_de=messages.get("de"),
        shape=_show(shape, data),
        component=_show(graph.value(node, SH.sourceConstraintComponent), data),
        value=_show(graph.value(node, SH.value), data),
        files=tuple(str(p) for p in _files(loaded, data, focus)),
        focus_iri=str(focus) if isinstance(focus, URIRef) else None,
        shape_iri=str(shape) if isinstance(shape, URIRef) else None,
    )


def _files(loaded: Loaded, data: Graph, focus: Node | None) -> list[Path]:
    """Files that state the focus node; else those of the resources pointing at it
    (a publisher without a name has no triples of its own, but the source citing it does)."""
    if focus is None:
        return []
    files = loaded.files_of(focus)
    if not files:
        found = {path for subject in set(data.subjects(None, focus)) for path in loaded.files_of(subject)}
        files = sorted(found)
    return files


def _show(node: Node | None, data: Graph) -> str | None:
    """A compact, readable form: prefixed name where a prefix is bound, else N3."""
    if node is None:
        return None
    if isinstance(node, BNode):
        return "[blank node]"
    if isinstance(node, URIRef):
        try:
            return data.namespace_manager.normalizeUri(node)
        except Exception:  # noqa: BLE001 - any odd IRI is still shown, just unabbreviated
            return f"<{node}>"
    return node.n3(data.namespace_manager)


def _show_path(graph: Graph, path: Node | None, data: Graph) -> str | None:
    """Property paths in SPARQL syntax: `p`, `a|b`, `a/b`, `^p` (others as `[path]`)."""
    if path is None or not isinstance(path, BNode):
        return _show(path, data)
    alternatives = graph.value(path, SH.alternativePath)
    if alternatives is not None:
        return "|".join(_show_path(graph, p, data) or "?" for p in Collection(graph, alternatives))
    inverse = graph.value(path, SH.inversePath)
    if inverse is not None:
        return "^" + (_show_path(graph, inverse, data) or "?")
    if graph.value(path, RDF.first) is not None:
        return "/".join(_show_path(graph, p, data) or "?" for p in Collection(graph, path))
    return "[path]"
