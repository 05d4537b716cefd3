"""The audit report: where sources disagree, what stays unverified, what rests on weak sources.

The report is assembled *only* from the rows of the queries in `queries/*.rq` (see
`QUERIES`), so the published SPARQL query for contradicted claims and the report can
never drift apart. It renders as plain text (terminal), JSON (machines; RDF terms in the
SPARQL JSON results form) and HTML (German or English).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

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
    short,
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
TEMPLATES = Path(__file__).resolve().parent / "templates"
# The page's stylesheet: served as /static/site/audit.css, inlined into the standalone file.
STYLESHEETS = Path(__file__).resolve().parents[1] / "web" / "static" / "site"
STRINGS = TEMPLATES / "audit-strings.toml"


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


# ------------------------------------------------------------------ rendering


@cache
def strings() -> dict[str, dict[str, str]]:
    with STRINGS.open("rb") as fh:
        return tomllib.load(fh)


def term_text(term: Term | None, labels: Mapping[str, str], lang: str, base_iri: str) -> str:
    """A value for people: a label when the IRI has one, else the short IRI or the literal."""
    if term is None:
        return ""
    if term.is_iri:
        return labels.get(lang) or labels.get("en") or short(term.value, base_iri)
    return term.value


def render_json(report: AuditReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def render_text(report: AuditReport, lang: str = "en") -> str:
    s = _strings(lang)
    base = report.base_iri
    summary = report.summary()
    out = [s["title"], "=" * len(s["title"]), ""]
    out.append(s["summary_line"].format(**summary))
    out.append("")

    def claim_block(index: int, c: Claim, with_trusted: bool) -> list[str]:
        label = c.label.get(lang) or c.label.get("en", "")
        lines = [f"{index}. {label}  [{short(c.iri, base)}]"]
        source = c.source.label.get(lang) or short(c.source.iri, base)
        lines.append(f"   {s['source']}: {source} ({c.start}-{c.end})")
        lines.append(f"   {s['quote']}: \u201c{c.quote}\u201d")
        lines.append(f"   {s['claimed_value']}: {term_text(c.value, c.value_label, lang, base)}")
        if with_trusted:
            lines.append(f"   {s['trusted_value']}: {term_text(c.trusted, c.trusted_label, lang, base)}")
            names = [e.label.get(lang) or short(e.iri, base) for e in c.evidence_sources]
            lines.append(f"   {s['trusted_source']}: {'; '.join(names) if names else s['no_source']}")
        note = c.note.get(lang) or c.note.get("en")
        if note:
            lines.append(f"   {s['why']}: {note}")
        return lines

    sections: list[tuple[str, list[str]]] = [
        (
            s["contradicted"],
            [line for i, c in enumerate(report.contradicted, 1) for line in claim_block(i, c, True)],
        ),
        (
            s["unverified"],
            [line for i, c in enumerate(report.unverified, 1) for line in claim_block(i, c, False)],
        ),
        (
            s["translation"],
            [
                f"- {t.label.get(lang) or t.label.get('en', '')}"
                f" [{short(t.claim, base)} / {short(t.original, base)}]"
                f" ({', '.join(t.changes)})"
                for t in report.translation_findings
            ],
        ),
        (
            s["asserted_doubtful"],
            [
                f"- {a.label.get(lang) or a.label.get('en', '')} [{short(a.claim, base)}, {a.verdict}]:"
                f" {s['asserted_by']} {short(a.fact, base)}"
                for a in report.asserted_doubtful
            ],
        ),
        (
            s["one_way"],
            [
                f"- {short(o.partnership, base)}: {' / '.join(lab for _, lab in o.partners)}"
                f" ({', '.join(short(x, base) for x in o.sources) or s['no_source']})"
                for o in report.one_way
            ],
        ),
        (
            s["weak_only"],
            [
                f"- {short(w.subject, base)} {local_name(w.fact)} = {short(w.value.value, base)}"
                f" ({s['only_source']}: {short(w.source, base)})"
                for w in report.weak_only
            ],
        ),
    ]
    shown = {
        s["one_way"]: (len(report.one_way), report.one_way_total),
        s["weak_only"]: (len(report.weak_only), report.weak_only_total),
    }
    sections.append((s["cross_graph"], _cross_graph_lines(report, s)))
    for title, lines in sections:
        out += [title, "-" * len(title)]
        out += lines or [s["none"]]
        listed, total = shown.get(title, (0, 0))
        if listed < total:
            out.append(s["shown"].format(shown=listed, total=total))
        out.append("")
    return "\n".join(out)


def _cross_graph_lines(report: AuditReport, s: Mapping[str, str]) -> list[str]:
    """Per partner graph: where and when it was read, then each partnership that is not reciprocal."""
    if not report.cross_graph:
        return [s["cross_graph_none"]]
    lines = []
    for g in report.cross_graph:
        reciprocal = sum(c.status == "reciprocal" for c in g.checks)
        lines.append(f"- {', '.join(g.partner.cities) or short(g.partner.graph, report.base_iri)}: "
                     + s["cross_graph_read"].format(url=g.partner.url, retrieved=g.partner.retrieved or "?")
                     + f"; {s['cross_graph_reciprocal'].format(n=reciprocal)}")
        for c in g.checks:
            if c.status == "reciprocal":
                continue
            status = s["status_" + c.status.replace("-", "_")]
            ours = short(c.ours.partnership or c.ours.place, report.base_iri) if c.ours else "-"
            theirs = (c.theirs.partnership or c.theirs.place) if c.theirs else "-"
            lines.append(f"  {status}: {c.label or c.partner} ({s['ours']} {ours}, {s['theirs']} {theirs})")
            lines += [f"    - {d.text(lambda iri: short(iri, report.base_iri))}" for d in c.differences]
    return lines


def render_html(
    report: AuditReport, lang: str = "en", public: Callable[[str], str] | None = None, site: bool = False
) -> str:
    """A standalone HTML page; `public` maps our IRIs to followable URLs (web server)."""
    template = _environment().get_template("audit.html")
    return template.render(
        r=report,
        s=_strings(lang),
        lang=lang,
        other_lang="de" if lang == "en" else "en",
        summary=report.summary(),
        public=public or (lambda iri: iri),
        short=lambda iri: short(iri, report.base_iri),
        term=lambda t, labels: term_text(t, labels, lang, report.base_iri),
        local_name=local_name,
        site=site,
    )


def _strings(lang: str) -> dict[str, str]:
    table = strings()
    return {**table["en"], **table.get(lang, {})}


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader([TEMPLATES, STYLESHEETS]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
