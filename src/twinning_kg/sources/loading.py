"""Load the Turtle sources into one rdflib Dataset, one named graph per source area.

Conventions (docs/architecture.md): `ontology/*.ttl` -> `{base}graph/ontology`;
`data/<area>/*.ttl` -> `{base}graph/<area>` (e.g. `data/kassel/`, `data/claims/`);
`imports/<name>.ttl` -> `{base}graph/<name>`. The ontology is the kit's, parsed
against the vocabulary's base (`Settings.vocabulary`); a project's files are parsed
with `publicID = base IRI`, so relative IRIs in them land under the project's base.
Syntax is checked with Oxigraph's strict parser first because it reports the exact
line and column; a broken file raises `SourceError` naming both.

Curation is decided by where a resource lives: every area under `data/` is curated, so
the loader marks each place and partnership typed in an area's graph `tw:curated true`
(in that graph). Nobody writes the flag by hand, and a new resource cannot escape the
rules for curated data by forgetting it. Imports add their own graphs after loading and
are never curated.

Nothing under `data/` is silently ignored: an RDF file directly under `data/` (in no
area) or with another extension than `.ttl` is not loaded but reported by name
(`Loaded.problems`), and the validation report turns each into a violation.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph
from rdflib import Dataset, Graph, Literal, URIRef
from rdflib.namespace import RDF, RDFS
from rdflib.term import Node

from twinning_kg.config import Settings


class SourceError(Exception):
    """A source file that cannot be read or parsed; `str()` names file and line."""

    def __init__(self, path: Path, line: int | None, column: int | None, message: str) -> None:
        self.path, self.line, self.column, self.message = path, line, column, message
        where = f"{path}:{line}:{column}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


# rdflib logs every ill-typed literal (a month 13, a malformed decimal) with a traceback when it
# parses one; the shapes report those as violations with file and message
# (shapes/literals.ttl), so the traceback would only frighten the curator.
logging.getLogger("rdflib.term").setLevel(logging.ERROR)

# Extensions of RDF files a curator may put under data/ by mistake (only `.ttl` is read).
RDF_SUFFIXES = {".ttl", ".turtle", ".nt", ".n3", ".nq", ".trig", ".rdf", ".owl", ".jsonld"}


@dataclass(frozen=True)
class LayoutProblem:
    """A file under `data/` that is not loaded, and why (in English and German)."""

    path: Path
    message_en: str
    message_de: str


@dataclass
class Loaded:
    """The dataset plus where each subject was stated (for readable reports)."""

    dataset: Dataset
    files: dict[Path, URIRef] = field(default_factory=dict)
    subject_files: dict[Node, set[Path]] = field(default_factory=lambda: defaultdict(set))
    curated_graphs: set[URIRef] = field(default_factory=set)
    problems: list[LayoutProblem] = field(default_factory=list)

    def files_of(self, node: Node) -> list[Path]:
        return sorted(self.subject_files.get(node, ()))


ONTOLOGY_AREA = "ontology"


def source_files(settings: Settings) -> list[tuple[Path, str]]:
    """Every source file with the local name of its graph, in a stable order: the kit's
    ontology, the project's curated areas (`data/<area>/`), then its imports
    (`imports/<name>.ttl`, graph `<name>`)."""
    found: list[tuple[Path, str]] = [
        (p, ONTOLOGY_AREA) for p in sorted(settings.ontology_dir.glob("*.ttl"))
    ]
    if settings.data_dir.is_dir():
        for area in sorted(p for p in settings.data_dir.iterdir() if p.is_dir()):
            found += [(p, area.name) for p in sorted(area.rglob("*.ttl"))]
    found += [(p, p.stem) for p in import_files(settings)]
    return found


def import_files(settings: Settings) -> list[Path]:
    """`imports/*.ttl`: places and sources as an outside dataset names them (written by
    `new-city`), loaded into graphs of their own and never curated."""
    if not settings.imports_dir.is_dir():
        return []
    return sorted(p for p in settings.imports_dir.glob("*.ttl") if p.is_file())


def parse_base(settings: Settings, area: str) -> str:
    """The base IRI a file of `area` is parsed against: the kit's vocabulary for the
    ontology, the project's base IRI for everything else."""
    return settings.vocabulary if area == ONTOLOGY_AREA else settings.base_iri


def layout_problems(settings: Settings) -> list[LayoutProblem]:
    """RDF files under `data/` that `source_files` does not load (see module docstring)."""
    problems = _import_problems(settings)
    data = settings.data_dir
    if not data.is_dir():
        return problems
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        if path.suffix.lower() not in RDF_SUFFIXES or (path.parent != data and path.suffix == ".ttl"):
            continue
        if path.parent == data:
            problems.append(LayoutProblem(
                path,
                f"{path.name} lies directly under data/, in no area, and is not loaded; "
                "move it into an area folder (data/<area>/)",
                f"{path.name} liegt direkt unter data/, in keinem Bereich, und wird nicht geladen; "
                "verschieben Sie die Datei in einen Bereichsordner (data/<Bereich>/)",
            ))
        else:
            problems.append(LayoutProblem(
                path,
                f"{path.name} is not loaded: only Turtle files ending in .ttl are read",
                f"{path.name} wird nicht geladen: gelesen werden nur Turtle-Dateien mit der Endung .ttl",
            ))
    return problems


def _import_problems(settings: Settings) -> list[LayoutProblem]:
    """Under `imports/`, only `*.ttl` directly in the folder is read; a name an area of
    `data/` has too would put curated and imported statements into one graph."""
    folder = settings.imports_dir
    if not folder.is_dir():
        return []
    data = settings.data_dir
    areas = {p.name for p in data.iterdir() if p.is_dir()} if data.is_dir() else set()
    problems = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() not in RDF_SUFFIXES:
            continue
        if path.parent != folder or path.suffix != ".ttl":
            problems.append(LayoutProblem(
                path,
                f"{path.name} is not loaded: only Turtle files ending in .ttl directly under imports/ "
                "are read",
                f"{path.name} wird nicht geladen: gelesen werden nur Turtle-Dateien mit der Endung .ttl "
                "direkt unter imports/",
            ))
        elif path.stem in areas or path.stem == ONTOLOGY_AREA:
            problems.append(LayoutProblem(
                path,
                f"{path.name} is not loaded: its graph name {path.stem!r} is a curated area's "
                f"(data/{path.stem}/); rename the file",
                f"{path.name} wird nicht geladen: der Graphname {path.stem!r} gehört einem gepflegten "
                f"Bereich (data/{path.stem}/); benennen Sie die Datei um",
            ))
    return problems


def check_syntax(path: Path, base_iri: str) -> None:
    """Strict parse with Oxigraph; raises SourceError with line and column."""
    try:
        for _ in pyoxigraph.parse(path=str(path), format=pyoxigraph.RdfFormat.TURTLE, base_iri=base_iri):
            pass
    except SyntaxError as exc:
        line, column = _position(exc)
        raise SourceError(path, line, column, _first_line(exc)) from exc
    except (OSError, ValueError) as exc:
        raise SourceError(path, None, None, str(exc)) from exc


def parse_file(path: Path, base_iri: str) -> Graph:
    """One Turtle file as an rdflib Graph (after the strict syntax check)."""
    check_syntax(path, base_iri)
    graph = Graph()
    try:
        graph.parse(path, format="turtle", publicID=base_iri)
    except Exception as exc:  # rdflib raises many types; any of them means a bad file
        raise SourceError(path, None, None, str(exc)) from exc
    return graph


def load(
    settings: Settings, extra: Iterable[tuple[Path, str]] = (), uncurated: Iterable[str] = ()
) -> Loaded:
    """Parse every source file (plus `extra` (path, area) pairs) into named graphs.

    Every area of `data/` is curated, extra areas too unless named in `uncurated`
    (tests load imported-style fixtures that way); the ontology and `imports/` are not.
    """
    dataset = Dataset(default_union=True)
    loaded = Loaded(dataset=dataset, problems=layout_problems(settings))
    skipped = {p.path for p in loaded.problems}
    imported = set(import_files(settings))
    plain = {ONTOLOGY_AREA, *uncurated}
    for path, area in [*source_files(settings), *extra]:
        if path in skipped:
            continue
        graph_iri = URIRef(f"{settings.base_iri}graph/{area}")
        part = parse_file(path, parse_base(settings, area) if path not in imported else settings.base_iri)
        target = dataset.graph(graph_iri)
        for prefix, ns in part.namespaces():
            dataset.bind(prefix, ns, override=False)
        for triple in part:
            target.add(triple)
            loaded.subject_files[triple[0]].add(path)
        loaded.files[path] = graph_iri
        if area not in plain and path not in imported:
            loaded.curated_graphs.add(graph_iri)
    mark_curated(loaded, settings)
    return loaded


def mark_curated(loaded: Loaded, settings: Settings) -> None:
    """`tw:curated true` on every place and partnership typed in a curated graph (that graph)."""
    tw = f"{settings.vocabulary}ontology#"
    classes = set()
    for root in (URIRef(tw + "Place"), URIRef(tw + "Partnership")):
        todo = [root]
        while todo:
            cls = todo.pop()
            if cls not in classes:
                classes.add(cls)
                todo += [s for s, _, _, _ in loaded.dataset.quads((None, RDFS.subClassOf, cls, None))]
    flag = (URIRef(tw + "curated"), Literal(True))
    for graph_iri in sorted(loaded.curated_graphs):
        graph = loaded.dataset.graph(graph_iri)
        typed = {s for cls in classes for s in graph.subjects(RDF.type, cls) if isinstance(s, URIRef)}
        for subject in sorted(typed):
            graph.add((subject, *flag))


def _position(exc: SyntaxError) -> tuple[int | None, int | None]:
    """Oxigraph puts 1-based line/column in SyntaxError.lineno/offset (or in the text)."""
    line = getattr(exc, "lineno", None)
    column = getattr(exc, "offset", None)
    if line is None:
        match = re.search(r"(?:line |at )(\d+):(\d+)", str(exc))
        if match:
            line, column = int(match.group(1)), int(match.group(2))
    return line, column


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
