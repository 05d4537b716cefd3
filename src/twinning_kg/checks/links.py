"""check-links: read another city's graph and check its links into our IRI space.

Three questions, answered against our graph (the sources as the build sees them, or a
built release):
1. Which of its IRIs under our base resolve to resources we hold, and which dangle?
2. Which partnerships with Kassel does it assert (a tw:Partnership with our Kassel as a
   partner, or tw:twinnedWith / wdt:P190 links to our Kassel IRI or Kassel's Wikidata
   IRI), and do ours agree: same partner, same start, same status?
3. Its owl:sameAs links, compared with ours.

Their file is parsed with Oxigraph's strict parsers (line and column on errors, and no
remote JSON-LD contexts are ever fetched) and then looked at with rdflib. Before that,
`untrusted_input` refuses RDF/XML with a DTD (entity bombs, external entities) and JSON-LD
nested deeper than any real document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyoxigraph
from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import OWL, RDF
from rdflib.term import Node

from twinning_kg.graph.claims import Select
from twinning_kg.sources import untrusted_input

WIKIDATA_ENTITY = "http://www.wikidata.org/entity/"
P190 = URIRef("http://www.wikidata.org/prop/direct/P190")
FORMATS = {
    ".ttl": pyoxigraph.RdfFormat.TURTLE,
    ".nt": pyoxigraph.RdfFormat.N_TRIPLES,
    ".jsonld": pyoxigraph.RdfFormat.JSON_LD,
    ".json": pyoxigraph.RdfFormat.JSON_LD,
    ".rdf": pyoxigraph.RdfFormat.RDF_XML,
    ".owl": pyoxigraph.RdfFormat.RDF_XML,
}
# Namespaces whose IRIs identify one thing each: two different ones for the same resource conflict.
IDENTITY_NAMESPACES = (WIKIDATA_ENTITY, "https://sws.geonames.org/", "http://sws.geonames.org/")


class UnreadableGraph(Exception):
    """The file cannot be read or parsed; `str()` names the file and, when known, line and column."""


# ------------------------------------------------------------------ report model


@dataclass
class Dangling:
    iri: str
    used_by: list[str]  # "subject predicate" where the IRI occurs in their graph


@dataclass
class PartnershipCheck:
    """One partnership with Kassel that their graph asserts, compared with ours."""

    asserted_as: str  # "tw:Partnership <iri>" | "tw:twinnedWith" | "wdt:P190"
    their_partner: str
    our_partner: str | None = None
    our_partnership: str | None = None
    their_start: str | None = None
    our_start: str | None = None
    their_status: str | None = None
    our_status: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        return not self.problems


@dataclass
class SameAsCheck:
    subject: str
    target: str
    our_resource: str | None
    verdict: str  # "agree" | "conflict" | "additional"
    ours: list[str] = field(default_factory=list)


@dataclass
class LinkReport:
    file: str
    base_iri: str
    resolved: list[str]
    dangling: list[Dangling]
    partnerships: list[PartnershipCheck]
    same_as: list[SameAsCheck]

    @property
    def conflicts(self) -> int:
        return sum(not p.agrees for p in self.partnerships) + sum(
            s.verdict == "conflict" for s in self.same_as
        )

    @property
    def exit_status(self) -> int:
        """0 when everything agrees, 1 on any conflict or dangling link."""
        return 1 if self.conflicts or self.dangling else 0

    def to_json(self) -> dict:
        out = asdict(self)
        for p, raw in zip(self.partnerships, out["partnerships"], strict=True):
            raw["agrees"] = p.agrees
        out["summary"] = {
            "resolved": len(self.resolved),
            "dangling": len(self.dangling),
            "partnerships": len(self.partnerships),
            "partnerships_agreeing": sum(p.agrees for p in self.partnerships),
            "same_as_conflicts": sum(s.verdict == "conflict" for s in self.same_as),
            "conflicts": self.conflicts,
            "exit_status": self.exit_status,
        }
        return out


# ------------------------------------------------------------------ reading their graph


def read_graph(path: Path) -> Graph:
    """Parse Turtle / N-Triples / JSON-LD / RDF/XML chosen by the file extension."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(FORMATS))
        raise UnreadableGraph(f"{path}: unknown extension {path.suffix!r} (expected one of {known})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableGraph(f"{path}: {exc.strerror or exc}") from exc
    try:  # refused before parsing: DTDs (entity bombs, XXE), too deep JSON, non-UTF-8
        if fmt == pyoxigraph.RdfFormat.RDF_XML:
            untrusted_input.check_xml(data, path)
        elif fmt == pyoxigraph.RdfFormat.JSON_LD:
            # JSON syntax errors first: the json module knows line and column
            untrusted_input.json_document(data, path)
    except untrusted_input.UntrustedInputError as exc:
        raise UnreadableGraph(str(exc)) from exc
    graph = Graph()
    try:
        for quad in pyoxigraph.parse(data, format=fmt, base_iri=path.resolve().as_uri()):
            graph.add((_node(quad.subject), _node(quad.predicate), _node(quad.object)))
    except SyntaxError as exc:
        line, column = getattr(exc, "lineno", None), getattr(exc, "offset", None)
        where = f"{path}:{line}:{column}" if line is not None else str(path)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else "syntax error"
        raise UnreadableGraph(f"{where}: {message}") from exc
    except (OSError, ValueError) as exc:
        raise UnreadableGraph(f"{path}: {exc}") from exc
    return graph


def _node(term: object) -> Node:
    if isinstance(term, pyoxigraph.NamedNode):
        return URIRef(term.value)
    if isinstance(term, pyoxigraph.BlankNode):
        return BNode(term.value)
    if isinstance(term, pyoxigraph.Literal):
        if term.language:
            return Literal(term.value, lang=term.language)
        return Literal(term.value, datatype=URIRef(term.datatype.value))
    raise UnreadableGraph(f"unsupported RDF term {term!r} (RDF-star is not expected here)")


# ------------------------------------------------------------------ our side


class Ours:
    """What we hold, asked through SPARQL so sources and releases behave the same."""

    def __init__(self, select: Select, base_iri: str) -> None:
        self.select = select
        self.base = base_iri
        self.tw = f"{base_iri}ontology#"
        self.kassel = f"{base_iri}id/place/kassel"

    def ours(self, iri: str) -> bool:
        return iri.startswith(self.base)

    def held(self, iris: Iterable[str]) -> set[str]:
        values = " ".join(f"<{i}>" for i in sorted(set(iris)))
        if not values:
            return set()
        rows = self.select(f"SELECT ?x WHERE {{ VALUES ?x {{ {values} }} FILTER EXISTS {{ ?x ?p ?o }} }}")
        return {r["x"].value for r in rows}

    def same_as(self, iris: Iterable[str]) -> dict[str, set[str]]:
        """owl:sameAs targets of our resources `iris`."""
        values = " ".join(f"<{i}>" for i in sorted(set(iris)))
        if not values:
            return {}
        rows = self.select(f"SELECT ?x ?o WHERE {{ VALUES ?x {{ {values} }} ?x <{OWL.sameAs}> ?o }}")
        out: dict[str, set[str]] = {}
        for r in rows:
            out.setdefault(r["x"].value, set()).add(r["o"].value)
        return out

    def by_external(self, iris: Iterable[str]) -> dict[str, str]:
        """External IRI (Wikidata, GeoNames, …) -> our resource that is owl:sameAs it."""
        values = " ".join(f"<{i}>" for i in sorted(set(iris)))
        if not values:
            return {}
        rows = self.select(
            f"SELECT ?x ?o WHERE {{ VALUES ?o {{ {values} }} ?x <{OWL.sameAs}> ?o "
            f'FILTER (STRSTARTS(STR(?x), "{self.base}")) }} ORDER BY ?x'
        )
        out: dict[str, str] = {}
        for r in rows:
            out.setdefault(r["o"].value, r["x"].value)
        return out

    def kassel_partnerships(self) -> dict[str, dict[str, str | None]]:
        """Our partner place -> {partnership, start, status} for every partnership of Kassel."""
        rows = self.select(
            f"""SELECT ?p ?partner ?start ?status WHERE {{
                  ?p a <{self.tw}Partnership> ; <{self.tw}partner> <{self.kassel}> , ?partner .
                  FILTER (?partner != <{self.kassel}>)
                  OPTIONAL {{ ?p <{self.tw}startDate> ?start }}
                  OPTIONAL {{ ?p <{self.tw}status> ?status }}
                }} ORDER BY ?p"""
        )
        return {
            r["partner"].value: {
                "partnership": r["p"].value,
                "start": r["start"].value if "start" in r else None,
                "status": r["status"].value if "status" in r else None,
            }
            for r in rows
        }


# ------------------------------------------------------------------ the check


def check_links(path: Path, select: Select, base_iri: str, theirs: Graph | None = None) -> LinkReport:
    """Read `path` (unless already parsed as `theirs`) and compare its links with our graph
    (`select` runs SPARQL on it)."""
    theirs = read_graph(path) if theirs is None else theirs
    ours = Ours(select, base_iri)

    used: dict[str, list[str]] = {}
    for s, p, o in theirs:
        for term in (s, p, o):
            if isinstance(term, URIRef) and ours.ours(str(term)):
                used.setdefault(str(term), []).append(f"{s} {p}")
    held = ours.held(used)
    dangling = [Dangling(iri, sorted(set(used[iri]))) for iri in sorted(used) if iri not in held]

    external = {str(o) for _, _, o in theirs.triples((None, OWL.sameAs, None)) if isinstance(o, URIRef)}
    external |= {str(s) for s in theirs.subjects() if isinstance(s, URIRef) and not ours.ours(str(s))}
    external |= {
        str(o) for o in theirs.objects() if isinstance(o, URIRef) and str(o).startswith(WIKIDATA_ENTITY)
    }
    by_external = ours.by_external(i for i in external if not ours.ours(i))

    def our_resource(node: Node) -> str | None:
        """Our IRI for one of their nodes: itself, via their owl:sameAs, or via a shared external IRI."""
        if not isinstance(node, URIRef):
            return None
        iri = str(node)
        if ours.ours(iri):
            return iri
        for target in sorted(str(t) for t in theirs.objects(node, OWL.sameAs)):
            if ours.ours(target):
                return target
        if iri in by_external:
            return by_external[iri]
        for target in sorted(str(t) for t in theirs.objects(node, OWL.sameAs)):
            if target in by_external:
                return by_external[target]
        return None

    partnerships = _partnerships(theirs, ours, our_resource)
    same_as = _same_as(theirs, ours, our_resource)
    return LinkReport(str(path), base_iri, sorted(held), dangling, partnerships, same_as)


def _partnerships(theirs: Graph, ours: Ours, our_resource) -> list[PartnershipCheck]:  # noqa: ANN001
    tw_partner = URIRef(ours.tw + "partner")
    kassel_wd = {
        t for ts in ours.same_as([ours.kassel]).values() for t in ts if t.startswith(WIKIDATA_ENTITY)
    }

    def is_kassel(node: Node) -> bool:
        return our_resource(node) == ours.kassel or str(node) in kassel_wd

    found: list[PartnershipCheck] = []
    for p in sorted(theirs.subjects(RDF.type, URIRef(ours.tw + "Partnership")), key=str):
        partners = sorted(theirs.objects(p, tw_partner), key=str)
        if not any(is_kassel(x) for x in partners):
            continue
        others = [x for x in partners if not is_kassel(x)]
        start = theirs.value(p, URIRef(ours.tw + "startDate"))
        status = theirs.value(p, URIRef(ours.tw + "status"))
        for other in others or [None]:
            found.append(
                PartnershipCheck(
                    asserted_as=f"tw:Partnership <{p}>",
                    their_partner=str(other) if other is not None else "",
                    their_start=str(start) if start is not None else None,
                    their_status=str(status) if status is not None else None,
                )
            )
    for predicate, name in ((URIRef(ours.tw + "twinnedWith"), "tw:twinnedWith"), (P190, "wdt:P190")):
        for s, o in sorted(theirs.subject_objects(predicate), key=lambda so: (str(so[0]), str(so[1]))):
            if is_kassel(s) and not is_kassel(o):
                other = o
            elif is_kassel(o) and not is_kassel(s):
                other = s
            else:
                continue
            found.append(PartnershipCheck(asserted_as=name, their_partner=str(other)))

    our_partnerships = ours.kassel_partnerships()
    for check in found:
        partner = our_resource(URIRef(check.their_partner)) if check.their_partner else None
        check.our_partner = partner
        if partner is None:
            check.problems.append("partner: not a place we hold (no IRI or owl:sameAs of ours)")
            continue
        mine = our_partnerships.get(partner)
        if mine is None:
            check.problems.append(f"partner: we hold no partnership between Kassel and <{partner}>")
            continue
        check.our_partnership = mine["partnership"]
        check.our_start, check.our_status = mine["start"], mine["status"]
        if check.their_start is not None and not _same_start(check.their_start, check.our_start):
            check.problems.append(f"start: theirs {check.their_start}, ours {check.our_start}")
        if check.their_status is not None and check.their_status != check.our_status:
            check.problems.append(f"status: theirs <{check.their_status}>, ours <{check.our_status}>")
    return found


def _same_start(theirs: str, ours: str | None) -> bool:
    """Equal, or equal at the coarser precision (1952 vs 1952-05-01)."""
    if ours is None:
        return False
    return theirs == ours or theirs.startswith(ours + "-") or ours.startswith(theirs + "-")


def _same_as(theirs: Graph, ours: Ours, our_resource) -> list[SameAsCheck]:  # noqa: ANN001
    links = sorted(
        ((s, o) for s, o in theirs.subject_objects(OWL.sameAs) if isinstance(o, URIRef)),
        key=lambda so: (str(so[0]), str(so[1])),
    )
    resources = {r for s, o in links for r in (our_resource(s), our_resource(o)) if r}
    our_links = ours.same_as(resources)
    checks: list[SameAsCheck] = []
    for s, o in links:
        target = str(o)
        resource = our_resource(s) if not ours.ours(target) else target
        if resource is None:
            resource = our_resource(o)
        if resource is None:
            continue  # a link between two things we do not describe
        mine = sorted(our_links.get(resource, set()))
        if ours.ours(target) or target in mine:
            verdict = "agree"
        elif any(target.startswith(ns) and any(m.startswith(ns) for m in mine) for ns in IDENTITY_NAMESPACES):
            verdict = "conflict"
        else:
            verdict = "additional"
        checks.append(SameAsCheck(str(s), target, resource, verdict, mine))
    return checks


# ------------------------------------------------------------------ rendering


def render_text(report: LinkReport) -> str:
    base = report.base_iri

    def short(iri: str | None) -> str:
        if not iri:
            return "-"
        return iri[len(base) :] if iri.startswith(base) else iri

    out = [f"check-links {report.file}", ""]
    out.append(f"Links into {base}: {len(report.resolved)} resolve, {len(report.dangling)} dangling")
    out += [f"  ok        {short(i)}" for i in report.resolved]
    for d in report.dangling:
        out.append(f"  DANGLING  {d.iri}  (used by: {'; '.join(d.used_by)})")
    out += ["", f"Partnerships with Kassel asserted: {len(report.partnerships)}"]
    for p in report.partnerships:
        state = "agrees" if p.agrees else "CONFLICT"
        out.append(f"  {state:8}  {p.asserted_as}: partner {p.their_partner} -> {short(p.our_partner)}")
        if p.our_partnership:
            out.append(
                f"            ours {short(p.our_partnership)}: start {p.our_start or '-'}, "
                f"status {short(p.our_status)}; theirs: start {p.their_start or '-'}, "
                f"status {short(p.their_status)}"
            )
        out += [f"            - {problem}" for problem in p.problems]
    out += ["", f"owl:sameAs links: {len(report.same_as)}"]
    for s in report.same_as:
        out.append(
            f"  {s.verdict.upper() if s.verdict == 'conflict' else s.verdict:10}  {s.subject} = {s.target}"
        )
        if s.verdict == "conflict":
            out.append(f"              ours for {short(s.our_resource)}: {', '.join(s.ours) or '-'}")
    out += [
        "",
        "all links agree"
        if report.exit_status == 0
        else f"{report.conflicts} conflicts, {len(report.dangling)} dangling links",
    ]
    return "\n".join(out) + "\n"


def render_json(report: LinkReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
