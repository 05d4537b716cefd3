"""Queries over claims, run the same way against any store.

The SPARQL lives in `queries/*.rq` (relative IRIs; `BASE <{base IRI}>` is prepended here,
so the base stays configurable). Every backend answers in the W3C SPARQL 1.1 Query
Results JSON format and is parsed by one function, so the CLI over the sources, the CLI
over a built release and the web page over the query engine see identical rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pyoxigraph

from twinning_kg.config import Settings
from twinning_kg.graph.materialise import materialise
from twinning_kg.sources import loading, partner_snapshots

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
# Languages of the claims' labels and notes (the queries bind `…En` and `…De` variables).
LANGUAGES = ("en", "de")


def langs(row: Row, stem: str) -> dict[str, str]:
    """`{"en": row[stemEn], "de": row[stemDe]}`, for the variables the row binds."""
    return {lang: row[f"{stem}{lang.title()}"].value for lang in LANGUAGES if f"{stem}{lang.title()}" in row}


@dataclass(frozen=True)
class SourceRef:
    """A source a claim was made in or checked against: its IRI, labels by language, web page."""

    iri: str
    label: dict[str, str]
    url: str | None = None

    def name(self, lang: str) -> str:
        """What to call it in `lang`: its label there, else in English, else its IRI's local name."""
        return self.label.get(lang) or self.label.get("en") or local_name(self.iri)

    def to_json(self) -> dict[str, Any]:
        return {"iri": self.iri, "label": self.label, "url": self.url}


@dataclass(frozen=True)
class Claim:
    """One claim, as every reader sees it: the audit (text, JSON, HTML), the /audit page and
    the resource pages. Read from the rows of one claim (one row per evidence source) of
    any claims query; what a query does not ask for stays None (claims-about, for
    instance, has no subject or offsets)."""

    iri: str
    source: SourceRef
    quote: str | None
    label: dict[str, str]  # what the claim says, by language
    note: dict[str, str]  # why it was judged so, by language
    verdict: str | None = None  # "supported" | "contradicted" | "unverified"
    subject: str | None = None
    property: str | None = None
    value: Term | None = None
    value_label: dict[str, str] = field(default_factory=dict)
    start: int | None = None
    end: int | None = None
    trusted: Term | None = None  # the value the trusted sources give (judged claims)
    trusted_label: dict[str, str] = field(default_factory=dict)
    evidence_sources: tuple[SourceRef, ...] = ()

    @classmethod
    def from_rows(cls, rows: list[Row], verdict: str | None = None) -> Claim:
        """The claim of `rows` (all about one `?claim`); `verdict` when the query implies it."""
        first = rows[0]
        evidence: dict[str, SourceRef] = {}
        for row in rows:
            if "trustedSource" in row:
                iri = row["trustedSource"].value
                url = row["trustedSourceUrl"].value if "trustedSourceUrl" in row else None
                evidence.setdefault(iri, SourceRef(iri, langs(row, "trustedSourceLabel"), url))

        def text(var: str) -> str | None:
            return first[var].value if var in first else None

        return cls(
            iri=first["claim"].value,
            source=SourceRef(first["source"].value, langs(first, "sourceLabel"), text("sourceUrl")),
            quote=text("exact"),
            label=langs(first, "label"),
            note=langs(first, "note"),
            verdict=local_name(first["verdict"].value) if "verdict" in first else verdict,
            subject=text("subject"),
            property=text("property"),
            value=first.get("value"),
            value_label=langs(first, "valueLabel"),
            start=int(first["start"].value) if "start" in first else None,
            end=int(first["end"].value) if "end" in first else None,
            trusted=first.get("trusted"),
            trusted_label=langs(first, "trustedLabel"),
            evidence_sources=tuple(evidence.values()),
        )

    def says(self, lang: str) -> str | None:
        """What the claim says, in `lang` or else in English."""
        return self.label.get(lang) or self.label.get("en")

    def note_in(self, lang: str) -> str | None:
        return self.note.get(lang) or self.note.get("en")

    def evidence_line(self, base_iri: str) -> str | None:
        """One English line on what a judged claim was checked against: the trusted value and
        its sources; for a claim not judged against others, its note."""
        trusted = None
        if self.trusted is not None:
            trusted = (
                (self.trusted_label.get("en") or short(self.trusted.value, base_iri))
                if self.trusted.is_iri
                else self.trusted.value
            )
        sources = ", ".join(s.label.get("en") or local_name(s.iri) for s in self.evidence_sources)
        return "; ".join(part for part in (trusted, sources) if part) or self.note.get("en")

    def to_json(self) -> dict[str, Any]:
        """The audit's JSON form (RDF terms in the SPARQL JSON results form)."""
        out: dict[str, Any] = {
            "claim": self.iri,
            "source": self.source.to_json(),
            "subject": self.subject,
            "property": self.property,
            "value": self.value.to_json() if self.value is not None else None,
            "quote": {"exact": self.quote, "start": self.start, "end": self.end},
            "label": self.label,
            "note": self.note,
        }
        if self.trusted is not None:
            out["trusted_value"] = self.trusted.to_json()
            out["evidence_sources"] = [s.to_json() for s in self.evidence_sources]
        return out


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
    partner_snapshots.load_into(loaded.dataset, settings)  # as the build adds them: after materialising
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


def short(iri: str, base_iri: str) -> str:
    """Our IRIs without the base (`id/place/kassel`); others unchanged."""
    return iri[len(base_iri) :] if iri.startswith(base_iri) else iri


def local_name(iri: str) -> str:
    """`…/verdict/contradicted` -> `contradicted`, `…ontology#startDate` -> `startDate`."""
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]
