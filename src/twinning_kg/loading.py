"""Load the Turtle sources into one rdflib Dataset, one named graph per source area.

Conventions (docs/architecture.md): `ontology/*.ttl` -> `{base}graph/ontology`;
`data/<area>/*.ttl` -> `{base}graph/<area>` (e.g. `data/kassel/`, `data/claims/`).
Files are parsed with `publicID = base IRI`, so relative IRIs in them land under the
configured base. Syntax is checked with Oxigraph's strict parser first because it
reports the exact line and column; a broken file raises `SourceError` naming both.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyoxigraph
from rdflib import Dataset, Graph, URIRef
from rdflib.term import Node

from twinning_kg.config import Settings


class SourceError(Exception):
    """A source file that cannot be read or parsed; `str()` names file and line."""

    def __init__(self, path: Path, line: int | None, column: int | None, message: str) -> None:
        self.path, self.line, self.column, self.message = path, line, column, message
        where = f"{path}:{line}:{column}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


@dataclass
class Loaded:
    """The dataset plus where each subject was stated (for readable reports)."""

    dataset: Dataset
    files: dict[Path, URIRef] = field(default_factory=dict)
    subject_files: dict[Node, set[Path]] = field(default_factory=lambda: defaultdict(set))

    def files_of(self, node: Node) -> list[Path]:
        return sorted(self.subject_files.get(node, ()))


def source_files(settings: Settings) -> list[tuple[Path, str]]:
    """Every source file with the local name of its graph, in a stable order."""
    found: list[tuple[Path, str]] = [(p, "ontology") for p in sorted(settings.ontology_dir.glob("*.ttl"))]
    if settings.data_dir.is_dir():
        for area in sorted(p for p in settings.data_dir.iterdir() if p.is_dir()):
            found += [(p, area.name) for p in sorted(area.rglob("*.ttl"))]
    return found


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


def load(settings: Settings, extra: Iterable[tuple[Path, str]] = ()) -> Loaded:
    """Parse every source file (plus `extra` (path, area) pairs) into named graphs."""
    dataset = Dataset(default_union=True)
    loaded = Loaded(dataset=dataset)
    for path, area in [*source_files(settings), *extra]:
        graph_iri = URIRef(f"{settings.base_iri}graph/{area}")
        part = parse_file(path, settings.base_iri)
        target = dataset.graph(graph_iri)
        for prefix, ns in part.namespaces():
            dataset.bind(prefix, ns, override=False)
        for triple in part:
            target.add(triple)
            loaded.subject_files[triple[0]].add(path)
        loaded.files[path] = graph_iri
    return loaded


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
