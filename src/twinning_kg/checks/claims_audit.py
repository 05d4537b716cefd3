"""The audit report: where sources disagree, what stays unverified, what rests on weak sources.

The report is assembled *only* from the rows of the queries in `queries/*.rq` (see
`QUERIES`), so the published SPARQL query for contradicted claims and the report can
never drift apart. It is data: JSON here (machines; RDF terms in the SPARQL JSON results
form); the text for a terminal and the HTML page, in German or English, are written by
`twinning_kg.web.audit_report` with the site's templates and message catalogues.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twinning_kg.checks import partner_graphs
from twinning_kg.checks.partner_graphs import CrossGraph
from twinning_kg.graph.claims import (
    Claim,
    Row,
    Select,
    Term,
    group,
    langs,
    local_name,
    query_text,
)

QUERIES = (
    "contradicted-claims",
    "unverified-claims",
    "one-way-partnerships",
    "one-way-count",
    "weak-only-facts",
    "weak-only-count",
    "translation-findings",
    "asserted-doubtful-claims",
    "claim-counts",
)
# Lists that grow with an imported world graph (thousands of one-way or crawl-only
# partnerships): callers may cap them (the web page stays under the engine's row cap);
# their totals always come from the COUNT queries.
CAPPED = ("one-way-partnerships", "weak-only-facts")


@dataclass
class OneWay:
    partnership: str
    partners: list[tuple[str, str]]  # (iri, label)
    sources: list[str]


@dataclass
class WeakFact:
    subject: str
    fact: str
    value: Term
    source: str


@dataclass
class TranslationFinding:
    claim: str
    original: str
    label: dict[str, str]
    changes: list[str]  # "subject", "property", "verdict"


@dataclass
class AssertedDoubtful:
    """A claim we do not support whose statement the graph asserts anyway (e.g. by an import)."""

    claim: str
    verdict: str  # "unverified" | "contradicted"
    fact: str  # the resource that asserts it (the subject, or the partnership)
    label: dict[str, str]


@dataclass
class AuditReport:
    base_iri: str
    contradicted: list[Claim]
    unverified: list[Claim]
    one_way: list[OneWay]
    weak_only: list[WeakFact]
    translation_findings: list[TranslationFinding]
    counts: dict[str, dict[str, int]]  # source IRI -> verdict name -> number of claims
    one_way_total: int = 0
    weak_only_total: int = 0
    asserted_doubtful: list[AssertedDoubtful] = field(default_factory=list)
    # Partner graphs' accounts of our partnerships (checks.partner_graphs), beside the claims.
    cross_graph: list[CrossGraph] = field(default_factory=list)

    @property
    def has_contradictions(self) -> bool:
        return bool(self.contradicted)

    @property
    def cross_graph_conflicts(self) -> int:
        return sum(len(g.conflicts) for g in self.cross_graph)

    @property
    def exit_status(self) -> int:
        """1 when any claim is contradicted or a partner's graph contradicts ours, else 0."""
        return 1 if self.has_contradictions or self.cross_graph_conflicts else 0

    def summary(self) -> dict[str, int]:
        totals: dict[str, int] = {"supported": 0, "contradicted": 0, "unverified": 0}
        for by_verdict in self.counts.values():
            for verdict, n in by_verdict.items():
                totals[verdict] = totals.get(verdict, 0) + n
        return {
            "claims": sum(totals.values()),
            **totals,
            "one_way": self.one_way_total,
            "weak_only": self.weak_only_total,
            "translation_findings": len(self.translation_findings),
            "asserted_doubtful": len(self.asserted_doubtful),
            "cross_graph_conflicts": self.cross_graph_conflicts,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "base_iri": self.base_iri,
            "summary": self.summary(),
            "claims_by_source": self.counts,
            "truncated": {
                "one_way": len(self.one_way) < self.one_way_total,
                "weak_only": len(self.weak_only) < self.weak_only_total,
            },
            "contradicted": [c.to_json() for c in self.contradicted],
            "unverified": [c.to_json() for c in self.unverified],
            "one_way": [
                {
                    "partnership": o.partnership,
                    "partners": [{"iri": i, "label": lab} for i, lab in o.partners],
                    "sources": o.sources,
                }
                for o in self.one_way
            ],
            "weak_only": [
                {"subject": w.subject, "fact": w.fact, "value": w.value.to_json(), "source": w.source}
                for w in self.weak_only
            ],
            "asserted_doubtful": [
                {"claim": a.claim, "verdict": a.verdict, "fact": a.fact, "label": a.label}
                for a in self.asserted_doubtful
            ],
            "cross_graph": [g.to_json() for g in self.cross_graph],
            "translation_findings": [
                {"claim": t.claim, "original": t.original, "label": t.label, "changes": t.changes}
                for t in self.translation_findings
            ],
        }


# ------------------------------------------------------------------ building


def audit_query(name: str, vocabulary: str, limit: int | None = None) -> str:
    """The text of audit query `name` (its relative IRIs are the vocabulary's); the growing
    lists get `LIMIT limit` when capped."""
    text = query_text(name, vocabulary)
    return f"{text}LIMIT {limit}\n" if limit is not None and name in CAPPED else text


def build_report(
    select: Select, base_iri: str, limit: int | None = None, vocabulary: str | None = None,
    city_key: str | None = None,
) -> AuditReport:
    """Run every audit query through `select` and assemble the report (`vocabulary`: the
    base of the kit's terms, default `base_iri`; `city_key`: the project's city, whose
    partnerships are compared with the partner graphs the store holds)."""
    vocab = vocabulary or base_iri
    report = report_from_rows({name: select(audit_query(name, vocab, limit)) for name in QUERIES}, base_iri)
    if city_key is not None:
        report.cross_graph = partner_graphs.cross_graph(select, base_iri, vocab, city_key)
    return report


async def build_report_async(
    select: Callable[[str], Awaitable[list[Row]]], base_iri: str, limit: int | None = None,
    vocabulary: str | None = None,
) -> AuditReport:
    """The same, for an asynchronous query engine (the web page)."""
    vocab = vocabulary or base_iri
    rows = {name: await select(audit_query(name, vocab, limit)) for name in QUERIES}
    return report_from_rows(rows, base_iri)


def report_from_rows(rows: Mapping[str, list[Row]], base_iri: str) -> AuditReport:
    counts: dict[str, dict[str, int]] = {}
    for row in rows["claim-counts"]:
        counts.setdefault(row["source"].value, {})[local_name(row["verdict"].value)] = int(
            row["claims"].value
        )
    return AuditReport(
        base_iri=base_iri,
        contradicted=[
            Claim.from_rows(r, "contradicted") for r in group(rows["contradicted-claims"], "claim").values()
        ],
        unverified=[
            Claim.from_rows(r, "unverified") for r in group(rows["unverified-claims"], "claim").values()
        ],
        one_way=[_one_way(r) for r in rows["one-way-partnerships"]],
        weak_only=[
            WeakFact(r["subject"].value, r["fact"].value, r["value"], r["source"].value)
            for r in rows["weak-only-facts"]
        ],
        translation_findings=[_translation(r) for r in rows["translation-findings"]],
        counts=counts,
        one_way_total=_count(rows["one-way-count"]),
        weak_only_total=_count(rows["weak-only-count"]),
        asserted_doubtful=[
            AssertedDoubtful(
                r["claim"].value, local_name(r["verdict"].value), r["fact"].value, langs(r, "label")
            )
            for r in rows["asserted-doubtful-claims"]
        ],
    )


def _count(rows: list[Row]) -> int:
    return int(rows[0]["count"].value) if rows and "count" in rows[0] else 0


def _one_way(row: Row) -> OneWay:
    partners = [
        (row[var].value, row[f"{var}Label"].value if f"{var}Label" in row else local_name(row[var].value))
        for var in ("a", "b")
    ]
    sources = sorted(row["sources"].value.split()) if "sources" in row else []  # GROUP_CONCAT has no order
    return OneWay(row["partnership"].value, partners, sources)


def _translation(row: Row) -> TranslationFinding:
    changes = [
        name
        for name, a, b in (
            ("subject", "subject", "originalSubject"),
            ("property", "property", "originalProperty"),
            ("verdict", "verdict", "originalVerdict"),
        )
        if row[a].value != row[b].value
    ]
    return TranslationFinding(row["claim"].value, row["original"].value, langs(row, "label"), changes)


# ------------------------------------------------------------------ JSON


def render_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
