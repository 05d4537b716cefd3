"""check-links: read another city's graph and check it against ours.

Three questions, answered against our graph (the project's sources as the build sees them,
or a built release):
1. Per partnership either graph states (`checks.reciprocity`): reciprocal, one-way (only
   ours, only theirs) or in conflict (kind, start, end or status differ, with both values
   and both sources). Partners are matched by Wikidata item, since two cities' IRIs differ.
2. Which of its IRIs under our base resolve to resources we hold, and which dangle?
3. Its owl:sameAs links, compared with ours.

Their graph comes from a file (`read_graph`: the format by extension) or over HTTP
(`sources.linked_data_client`, bounded in time, size and redirects); either way the bytes
pass `untrusted_input` and Oxigraph's strict parsers (line and column on errors, no remote
JSON-LD context fetched). The JSON form follows docs/schemas/check-links.schema.json (docs/claims.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdflib import Graph, URIRef
from rdflib.namespace import OWL
from rdflib.term import Node

from twinning_kg.checks import reciprocity
from twinning_kg.checks.reciprocity import PairCheck
from twinning_kg.graph.claims import Select
from twinning_kg.sources.linked_data_client import EXTENSIONS, RemoteGraphError, parse_rdf

WIKIDATA_ENTITY = reciprocity.WIKIDATA_ENTITY
FORMAT = "twinning-kg check-links 2"
# Namespaces whose IRIs identify one thing each: two different ones for the same resource conflict.
IDENTITY_NAMESPACES = (WIKIDATA_ENTITY, "https://sws.geonames.org/", "http://sws.geonames.org/")
FILE_TYPES = {**EXTENSIONS, ".json": "application/ld+json"}


class UnreadableGraph(Exception):
    """The file cannot be read or parsed; `str()` names the file and, when known, line and column."""


# ------------------------------------------------------------------ report model


@dataclass
class Dangling:
    iri: str
    used_by: list[str]  # "subject predicate" where the IRI occurs in their graph


@dataclass
class SameAsCheck:
    subject: str
    target: str
    our_resource: str | None
    verdict: str  # "agree" | "conflict" | "additional"
    ours: list[str] = field(default_factory=list)


@dataclass
class Ours:
    """Our side: how to query it and which city it is about."""

    select: Select
    base_iri: str
    vocabulary: str
    city_key: str

    @property
    def city(self) -> str:
        return f"{self.base_iri}id/place/{self.city_key}"

    def ours(self, iri: str) -> bool:
        return iri.startswith(self.base_iri)


@dataclass
class LinkReport:
    source: str
    base_iri: str
    city: str
    city_qid: str | None
    their_cities: list[str]
    partnerships: list[PairCheck]
    resolved: list[str]
    dangling: list[Dangling]
    same_as: list[SameAsCheck]
    read: dict[str, Any] | None = None  # how it was read over HTTP

    @property
    def same_as_conflicts(self) -> int:
        return sum(s.verdict == "conflict" for s in self.same_as)

    @property
    def findings(self) -> int:
        """Everything short of agreement: partnerships not reciprocal, dangling links, sameAs conflicts."""
        one_way_or_conflict = sum(p.status != "reciprocal" for p in self.partnerships)
        return one_way_or_conflict + len(self.dangling) + self.same_as_conflicts

    @property
    def exit_status(self) -> int:
        """0 when every partnership is reciprocal and every link agrees, 1 on any finding."""
        return 1 if self.findings else 0

    def to_json(self) -> dict[str, Any]:
        counts = reciprocity.summary(self.partnerships)
        return {
            "format": FORMAT,
            "source": self.source,
            "read": self.read,
            "ours": {"city": self.city, "wikidata": self.city_qid},
            "their_cities": self.their_cities,
            "partnerships": [p.to_json() for p in self.partnerships],
            "resolved": self.resolved,
            "dangling": [{"iri": d.iri, "used_by": d.used_by} for d in self.dangling],
            "same_as": [
                {"subject": s.subject, "target": s.target, "our_resource": s.our_resource,
                 "verdict": s.verdict, "ours": s.ours}
                for s in self.same_as
            ],
            "summary": {
                **{status.replace("-", "_"): n for status, n in counts.items()},
                "partnerships": len(self.partnerships),
                "resolved": len(self.resolved),
                "dangling": len(self.dangling),
                "same_as_conflicts": self.same_as_conflicts,
                "findings": self.findings,
                "exit_status": self.exit_status,
            },
        }


# ------------------------------------------------------------------ reading their graph


def read_graph(path: Path) -> Graph:
    """Parse Turtle / N-Triples / N-Quads / JSON-LD / RDF/XML chosen by the file extension."""
    media = FILE_TYPES.get(path.suffix.lower())
    if media is None:
        known = ", ".join(sorted(FILE_TYPES))
        raise UnreadableGraph(f"{path}: unknown extension {path.suffix!r} (expected one of {known})")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableGraph(f"{path}: {exc.strerror or exc}") from exc
    try:
        return parse_rdf(data, media, str(path), base_iri=path.resolve().as_uri())
    except RemoteGraphError as exc:
        raise UnreadableGraph(str(exc)) from exc


# ------------------------------------------------------------------ the check


def check_links(theirs: Graph, ours: Ours, source: str, read: dict[str, Any] | None = None) -> LinkReport:
    """Compare their graph with ours (see module docstring)."""
    # The ontology document and its versions are the kit's, shared by every city: a graph that
    # carries a copy links to them, and that version chain is not ours to check. Its terms
    # (`ontology#Term`) are: a misspelt property of ours dangles like any other IRI.
    document = f"{ours.vocabulary}ontology"

    def checked(term: Node) -> bool:
        iri = str(term)
        in_document = iri == document or iri.startswith(document + "/")
        return isinstance(term, URIRef) and ours.ours(iri) and not in_document

    used: dict[str, list[str]] = {}
    for s, p, o in theirs:
        for term in (s, p, o):
            if checked(term):
                used.setdefault(str(term), []).append(f"{s} {p}")
    held = _held(ours.select, used)
    dangling = [Dangling(iri, sorted(set(used[iri]))) for iri in sorted(used) if iri not in held]

    external = {str(o) for _, _, o in theirs.triples((None, OWL.sameAs, None)) if isinstance(o, URIRef)}
    external |= {str(s) for s in theirs.subjects() if isinstance(s, URIRef) and not ours.ours(str(s))}
    external |= {
        str(o) for o in theirs.objects() if isinstance(o, URIRef) and str(o).startswith(WIKIDATA_ENTITY)
    }
    by_external = _by_external(ours, (i for i in external if not ours.ours(i)))

    def our_resource(node: Node) -> str | None:
        """Our IRI for one of their nodes: itself, via their owl:sameAs, or via a shared external IRI."""
        if not isinstance(node, URIRef):
            return None
        iri = str(node)
        if ours.ours(iri):
            return iri
        targets = sorted(str(t) for t in theirs.objects(node, OWL.sameAs))
        mine = next((t for t in targets if ours.ours(t)), None)
        shared = next((by_external[t] for t in targets if t in by_external), None)
        return mine or by_external.get(iri) or shared

    partnerships, city_qid, their_cities = _partnerships(theirs, ours, our_resource)
    same_as = _same_as(theirs, ours, our_resource)
    return LinkReport(
        source, ours.base_iri, ours.city, city_qid, their_cities, partnerships, sorted(held), dangling,
        same_as, read,
    )


def _partnerships(theirs: Graph, ours: Ours, our_resource) -> tuple[list[PairCheck], str | None, list[str]]:  # noqa: ANN001
    """Both accounts of every partnership between our city and theirs (checks.reciprocity)."""
    our_same = reciprocity.same_as(ours.select, [ours.city])
    city_qid = reciprocity.qid(our_same.get(ours.city, []))
    city_in_theirs = {ours.city} | ({WIKIDATA_ENTITY + city_qid} if city_qid else set())
    city_in_theirs |= {
        str(s) for s in {*theirs.subjects(), *theirs.objects()}
        if isinstance(s, URIRef) and our_resource(s) == ours.city
    }
    their_select = reciprocity.graph_select(theirs)
    their_accounts = reciprocity.accounts(their_select, ours.vocabulary, city_in_theirs)
    our_accounts = reciprocity.accounts(ours.select, ours.vocabulary, [ours.city])

    our_places = set(our_accounts) | {r for r in (our_resource(URIRef(p)) for p in their_accounts) if r}
    our_qids = {p: reciprocity.qid(t) for p, t in reciprocity.same_as(ours.select, our_places).items()}
    their_same = reciprocity.same_as(their_select, set(their_accounts))

    def key_ours(place: str) -> str:
        return our_qids.get(place) or place

    def key_theirs(place: str) -> str:
        mine = our_resource(URIRef(place))
        if mine is not None and mine in our_qids and our_qids[mine]:
            return our_qids[mine]  # type: ignore[return-value]
        if place.startswith(WIKIDATA_ENTITY):
            return place[len(WIKIDATA_ENTITY):]
        return reciprocity.qid(their_same.get(place, [])) or mine or place

    hubs = [h for h in reciprocity.hubs(their_select, ours.vocabulary) if h not in city_in_theirs]
    hub_same = reciprocity.same_as(their_select, hubs)
    expected = set()
    for hub in hubs:
        their_same.setdefault(hub, hub_same.get(hub, []))
        expected.add(key_theirs(hub))
    names: dict[str, str] = {}
    for place, label in reciprocity.labels(ours.select, our_accounts).items():
        names.setdefault(key_ours(place), label)
    for place, label in reciprocity.labels(their_select, {*their_accounts, *hubs}).items():
        names.setdefault(key_theirs(place), label)
    checks = reciprocity.compare(our_accounts, their_accounts, key_ours, key_theirs, expected, names)
    return checks, city_qid, sorted(expected, key=lambda k: (not k.startswith("Q"), k))


def _held(select: Select, iris: Iterable[str]) -> set[str]:
    values = " ".join(f"<{i}>" for i in sorted(set(iris)))
    if not values:
        return set()
    rows = select(f"SELECT ?x WHERE {{ VALUES ?x {{ {values} }} FILTER EXISTS {{ ?x ?p ?o }} }}")
    return {r["x"].value for r in rows}


def _by_external(ours: Ours, iris: Iterable[str]) -> dict[str, str]:
    """External IRI (Wikidata, GeoNames, …) -> our resource that is owl:sameAs it."""
    values = " ".join(f"<{i}>" for i in sorted(set(iris)))
    if not values:
        return {}
    rows = ours.select(
        f"SELECT ?x ?o WHERE {{ VALUES ?o {{ {values} }} ?x <{OWL.sameAs}> ?o "
        f'FILTER (STRSTARTS(STR(?x), "{ours.base_iri}")) }} ORDER BY ?x'
    )
    out: dict[str, str] = {}
    for r in rows:
        out.setdefault(r["o"].value, r["x"].value)
    return out


def _same_as(theirs: Graph, ours: Ours, our_resource) -> list[SameAsCheck]:  # noqa: ANN001
    links = sorted(
        ((s, o) for s, o in theirs.subject_objects(OWL.sameAs) if isinstance(o, URIRef)),
        key=lambda so: (str(so[0]), str(so[1])),
    )
    resources = {r for s, o in links for r in (our_resource(s), our_resource(o)) if r}
    our_links = {k: set(v) for k, v in reciprocity.same_as(ours.select, resources).items()}
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
        return iri[len(base):] if iri.startswith(base) else iri

    out = [f"check-links {report.source}"]
    if report.read:
        out.append(f"  read {' -> '.join(report.read['trail'])}: {report.read['bytes']:,} bytes "
                   f"{report.read['media_type']}, sha256 {report.read['sha256'][:16]}…")
    out.append(f"  our city {short(report.city)} ({report.city_qid or 'no Wikidata item'}); "
               f"their graph speaks for {', '.join(report.their_cities) or 'no city'}")
    counts = reciprocity.summary(report.partnerships)
    out += ["", f"Partnerships: {len(report.partnerships)} "
                f"({', '.join(f'{n} {status}' for status, n in counts.items() if n) or 'none'})"]
    for p in report.partnerships:
        name = f"{p.partner} {p.label}" if p.label and p.label != p.partner else p.partner
        state = p.status if p.status == "reciprocal" else p.status.upper()
        ours = short(p.ours.partnership or p.ours.place) if p.ours else "-"
        theirs = (p.theirs.partnership or " / ".join(p.theirs.asserted_as)) if p.theirs else "-"
        out.append(f"  {state:15} {name}: ours {ours}, theirs {theirs}")
        out += [f"                  - {d.text(short)}" for d in p.differences]
    out.append("")
    out.append(f"Links into {base}: {len(report.resolved)} resolve, {len(report.dangling)} dangling")
    for d in report.dangling:
        out.append(f"  DANGLING  {d.iri}  (used by: {'; '.join(d.used_by)})")
    out += ["", f"owl:sameAs links: {len(report.same_as)}"]
    for s in report.same_as:
        if s.verdict == "conflict":
            out.append(f"  CONFLICT    {s.subject} = {s.target}")
            out.append(f"              ours for {short(s.our_resource)}: {', '.join(s.ours) or '-'}")
    out.append(f"  {sum(s.verdict == 'agree' for s in report.same_as)} agree, "
               f"{sum(s.verdict == 'additional' for s in report.same_as)} additional")
    out += [
        "",
        "all partnerships reciprocal, all links agree"
        if report.exit_status == 0
        else f"{report.findings} finding(s): {sum(p.status != 'reciprocal' for p in report.partnerships)} "
        f"partnership(s) not reciprocal, {len(report.dangling)} dangling link(s), "
        f"{report.same_as_conflicts} owl:sameAs conflict(s)",
    ]
    return "\n".join(out) + "\n"


def render_json(report: LinkReport) -> str:
    return json.dumps(report.to_json(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
