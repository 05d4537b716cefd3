"""The audit report for people: plain text for a terminal, HTML in the site's layout.

`twinning-kg audit` (text, and the standalone HTML file it writes) and the server's
`/audit` page (`views.audit_page`) render the same `checks.claims_audit.AuditReport`
here, with the site's one template environment (`rendering`) and the message
catalogues (`messages/*.toml`, keys `audit_…`), so the terminal, the file and the page
say the same in the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from twinning_kg.checks.claims_audit import AuditReport
from twinning_kg.checks.reciprocity import Difference, Fact
from twinning_kg.graph.claims import Claim, Term, local_name, short
from twinning_kg.web.i18n import Strings, format_date
from twinning_kg.web.rendering import page

XSD = "http://www.w3.org/2001/XMLSchema#"
CALENDAR_DATATYPES = frozenset(XSD + name for name in ("date", "gYearMonth", "gYear", "dateTime"))


def term_text(term: Term | None, labels: Mapping[str, str], lang: str, base_iri: str) -> str:
    """A value for people: a label when the IRI has one, else the short IRI or the literal;
    a date as `lang` writes it."""
    if term is None:
        return ""
    if term.is_iri:
        return labels.get(lang) or labels.get("en") or short(term.value, base_iri)
    if term.datatype in CALENDAR_DATATYPES:
        return format_date(term.value, None, lang)
    return term.value


def difference_text(d: Difference, lang: str, short: Callable[[str], str] = str) -> str:
    """One value two graphs give differently, both sides with their sources, in `lang`
    (the audit and the partnership page)."""
    s = Strings(lang)

    def side(fact: Fact) -> str:
        if not fact.value:
            value = "–"
        elif d.property in ("start", "end"):
            value = format_date(fact.value, None, lang)
        else:
            value = short(fact.value)
        sources = "; ".join(source.text() for source in fact.sources)
        return f"{value} ({sources})" if sources else value

    return f"{s[d.property]}: {s.audit_ours} {side(d.ours)}, {s.audit_theirs} {side(d.theirs)}"


def render_text(report: AuditReport, lang: str = "en") -> str:
    s = Strings(lang).prefixed("audit_")
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
    sections.append((s["cross_graph"], _cross_graph_lines(report, lang)))
    for title, lines in sections:
        out += [title, "-" * len(title)]
        out += lines or [s["none"]]
        listed, total = shown.get(title, (0, 0))
        if listed < total:
            out.append(s["shown"].format(shown=listed, total=total))
        out.append("")
    return "\n".join(out)


def _cross_graph_lines(report: AuditReport, lang: str) -> list[str]:
    """Per partner graph: where and when it was read, then each partnership that is not reciprocal."""
    s = Strings(lang).prefixed("audit_")
    if not report.cross_graph:
        return [s["cross_graph_none"]]

    def brief(iri: str) -> str:
        return short(iri, report.base_iri)

    lines = []
    for g in report.cross_graph:
        reciprocal = sum(c.status == "reciprocal" for c in g.checks)
        retrieved = format_date(g.partner.retrieved, None, lang) if g.partner.retrieved else "?"
        read = s["cross_graph_read"].format(url=g.partner.url, retrieved=retrieved)
        name = ", ".join(g.partner.cities) or brief(g.partner.graph)
        lines.append(f"- {name}: {read}; {s['cross_graph_reciprocal'].format(n=reciprocal)}")
        for c in g.checks:
            if c.status == "reciprocal":
                continue
            status = s["status_" + c.status.replace("-", "_")]
            ours = brief(c.ours.partnership or c.ours.place) if c.ours else "-"
            theirs = (c.theirs.partnership or c.theirs.place) if c.theirs else "-"
            lines.append(f"  {status}: {c.label or c.partner} ({s['ours']} {ours}, {s['theirs']} {theirs})")
            lines += [f"    - {difference_text(d, lang, brief)}" for d in c.differences]
    return lines


def render_html(
    report: AuditReport,
    lang: str = "en",
    *,
    public: Callable[[str], str] | None = None,
    standalone: bool = True,
    path: str = "/audit",
    other_lang_href: str | None = None,
) -> str:
    """The report as a page in the site's layout; `standalone`: one self-contained file (the
    stylesheet inline, no links into a server), as `twinning-kg audit --format html` writes.
    `public` maps our IRIs to followable URLs (the server's IRI space)."""
    return page(
        "audit.html",
        lang,
        public=public or (lambda iri: iri),
        path=path,
        other_lang_href=other_lang_href,
        standalone=standalone,
        r=report,
        a=Strings(lang).prefixed("audit_"),
        summary=report.summary(),
        short=lambda iri: short(iri, report.base_iri),
        term=lambda t, labels: term_text(t, labels, lang, report.base_iri),
        local_name=local_name,
        difference=lambda d: difference_text(d, lang, lambda iri: short(iri, report.base_iri)),
        title=Strings(lang).audit_title,
    )
