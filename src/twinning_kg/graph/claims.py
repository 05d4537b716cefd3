"""Queries over claims, run the same way against any store.

The SPARQL lives in `queries/*.rq` (relative IRIs; `BASE <{base IRI}>` is prepended here,
so the base stays configurable). Every backend answers in the W3C SPARQL 1.1 Query
Results JSON format and is parsed by one function, so the CLI over the sources, the CLI
over a built release and the web page over the query engine see identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph

from twinning_kg.config import Settings
from twinning_kg.graph.materialise import materialise
from twinning_kg.sources import loading

QUERY_DIR = Path(__file__).resolve().parent / "queries"
SPARQL_JSON = "application/sparql-results+json"
XSD = "http://www.w3.org/2001/XMLSchema#"


@dataclass(frozen=True)
class Term:
    """One RDF term of a result row, as the SPARQL JSON results format describes it."""

    type: str  # "uri" | "literal" | "bnode"
    value: str
    datatype: str | None = None
    lang: str | None = None

    @classmethod
    def from_json(cls, binding: dict[str, Any]) -> Term:
        kind = binding["type"]
        if kind == "typed-literal":  # the old SPARQL JSON spelling
            kind = "literal"
        return cls(kind, binding["value"], binding.get("datatype"), binding.get("xml:lang"))

    def to_json(self) -> dict[str, str]:
        """Back to SPARQL JSON results form (stable keys, for the JSON report)."""
        out = {"type": self.type, "value": self.value}
        if self.datatype and self.datatype != XSD + "string":
            out["datatype"] = self.datatype
        if self.lang:
            out["xml:lang"] = self.lang
        return out

    @property
    def is_iri(self) -> bool:
        return self.type == "uri"

    def __str__(self) -> str:
        return self.value


Row = dict[str, Term]
# A function that runs one SELECT query and returns its rows.
Select = Callable[[str], list[Row]]


@cache
def _query_file(name: str) -> str:
    return (QUERY_DIR / f"{name}.rq").read_text(encoding="utf-8")


def query_text(name: str, base_iri: str) -> str:
    """The query `queries/{name}.rq` with our base IRI declared (SPARQL 1.1 §4.1.1 BASE)."""
    return f"BASE <{base_iri}>\n{_query_file(name)}"


def parse_results(body: bytes | str) -> list[Row]:
    """SPARQL 1.1 Query Results JSON -> rows (unbound variables are simply absent)."""
    data = json.loads(body)
    return [
        {var: Term.from_json(value) for var, value in binding.items()}
        for binding in data.get("results", {}).get("bindings", [])
    ]


def store_select(store: pyoxigraph.Store) -> Select:
    """Run queries on a pyoxigraph store over the union of its named graphs."""

    def select(query: str) -> list[Row]:
        results = store.query(query, use_default_graph_as_union=True)
        return parse_results(results.serialize(format=pyoxigraph.QueryResultsFormat.JSON))

    return select


def sources_select(settings: Settings) -> Select:
    """Queries over the Turtle sources as the build sees them (loaded + materialised)."""
    loaded = loading.load(settings)
    materialise(loaded.dataset, settings)
    return store_select(dataset_store(loaded.dataset))


def dataset_store(dataset: Any) -> pyoxigraph.Store:
    """An in-memory pyoxigraph store holding the quads of an rdflib Dataset."""
    store = pyoxigraph.Store()
    data = dataset.serialize(format="nquads", encoding="utf-8")
    store.load(data, format=pyoxigraph.RdfFormat.N_QUADS)
    return store


def run(select: Select, name: str, base_iri: str) -> list[Row]:
    return select(query_text(name, base_iri))


def group(rows: Iterable[Row], key: str) -> dict[str, list[Row]]:
    """Rows grouped by the value of `key`, in first-seen order (queries sort them)."""
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(row[key].value, []).append(row)
    return out


def about_query(iri: str, base_iri: str) -> str:
    """The claims-about query for one IRI; refuses anything that is not a plain IRI."""
    if not iri or any(c in iri for c in '<>"{}|^`\\ \t\r\n'):
        raise ValueError(f"not an IRI: {iri!r}")
    return query_text("claims-about", base_iri).replace("$about", f"<{iri}>")


def local_name(iri: str) -> str:
    """`…/verdict/contradicted` -> `contradicted`, `…ontology#startDate` -> `startDate`."""
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
