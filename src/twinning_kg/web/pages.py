"""Data behind the linked-data pages, fetched through the query engine.

Every read goes through `ctx.engine.execute` (N-Triples for graphs, SPARQL JSON for
tables), never through a local rdflib graph, so the same pages work over a remote store.
This module builds plain view objects; templates only lay them out.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, OWL, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

from twinning_kg.query.engine import QueryRequest
from twinning_kg.release.reader import DUMP_STEM
from twinning_kg.vocab import GEO, GSP, PROV, SCHEMA
from twinning_kg.web.context import AppContext

NTRIPLES = "application/n-triples"
SPARQL_JSON = "application/sparql-results+json"

LABEL_PROPS = (RDFS.label, SKOS.prefLabel, FOAF.name, SCHEMA.name, DCTERMS.title)
# Characters that may not appear in an IRIREF (SPARQL 1.1 §19.8): refuse rather than escape.
_BAD_IRI = re.compile(r'[\x00-\x20<>"{}|^`\\]')

PREFIXES = {
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "owl": str(OWL),
    "xsd": str(XSD),
    "skos": str(SKOS),
    "dcterms": str(DCTERMS),
    "foaf": str(FOAF),
    "prov": str(PROV),
    "schema": str(SCHEMA),
    "geo": str(GEO),
    "geosparql": str(GSP),
    "dcat": str(DCAT),
    "wd": "http://www.wikidata.org/entity/",
    "wdt": "http://www.wikidata.org/prop/direct/",
    "oa": "http://www.w3.org/ns/oa#",
    "void": "http://rdfs.org/ns/void#",
}


class UnsafeIri(ValueError):
    """A requested path that cannot be an IRI we hold."""


def iri_ref(iri: str) -> str:
    """`<iri>` for a SPARQL query; refuses characters that would break out of the IRIREF."""
    if not iri or _BAD_IRI.search(iri):
        raise UnsafeIri(iri)
    return f"<{iri}>"


def tw(ctx: AppContext, term: str) -> URIRef:
    return URIRef(f"{ctx.vocabulary}ontology#{term}")


# ------------------------------------------------------------------ engine access


async def construct(ctx: AppContext, query: str) -> Graph:
    """Run a CONSTRUCT/DESCRIBE and parse the N-Triples answer."""
    result = await ctx.engine.execute(QueryRequest(query=query, accept=NTRIPLES))
    graph = Graph()
    if result.body:
        graph.parse(data=result.body.decode("utf-8"), format="nt")
    return graph


def _term(binding: dict[str, Any]) -> Node:
    kind, value = binding.get("type"), binding.get("value", "")
    if kind == "uri":
        return URIRef(value)
    if kind == "bnode":
        return BNode(value)
    lang, datatype = binding.get("xml:lang"), binding.get("datatype")
    return Literal(value, lang=lang or None, datatype=URIRef(datatype) if datatype and not lang else None)


async def select(ctx: AppContext, query: str) -> list[dict[str, Node]]:
    """Run a SELECT and return its rows as rdflib terms."""
    result = await ctx.engine.execute(QueryRequest(query=query, accept=SPARQL_JSON))
    data = json.loads(result.body)
    return [{k: _term(v) for k, v in row.items()} for row in data.get("results", {}).get("bindings", [])]


async def ask(ctx: AppContext, query: str) -> bool:
    result = await ctx.engine.execute(QueryRequest(query=query, accept=SPARQL_JSON))
    return bool(json.loads(result.body).get("boolean"))


async def holds(ctx: AppContext, iri: str) -> bool:
    """Do we hold `iri`, i.e. is it the subject of a triple in the store?"""
    return await ask(ctx, f"ASK {{ {iri_ref(iri)} ?p ?o }}")


def _values(terms: Iterable[Node]) -> str:
    return " ".join(iri_ref(str(t)) for t in terms if isinstance(t, URIRef))


def _in(props: Iterable[URIRef]) -> str:
    return ", ".join(f"<{p}>" for p in props)


# ------------------------------------------------------------------ descriptions


INCOMING_LIMIT = 1000


def description_query(iri: str, incoming_limit: int = INCOMING_LIMIT) -> str:
    """The RDF document about `iri`: its triples, triples pointing at it, labels of both ends.

    Blank nodes hanging off the resource come with their own triples (one level), so the
    document is self-contained. Incoming links are capped (a concept used by every imported
    partnership would otherwise flood the page); no ORDER BY, which costs seconds at world
    scale; the read-only store answers in the same order every time.
    """
    r = iri_ref(iri)
    labels = _in(LABEL_PROPS)
    return f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ BIND({r} AS ?s) {r} ?p ?o }}
  UNION {{ {{ SELECT ?s ?p ?o WHERE {{ ?s ?p {r} BIND({r} AS ?o) }}
             LIMIT {incoming_limit} }} }}
  UNION {{ {r} ?q ?s . ?s ?p ?o . FILTER(isBlank(?s) || ?p IN ({labels})) }}
  UNION {{ {{ SELECT DISTINCT ?s WHERE {{ ?s ?q {r} }} LIMIT {incoming_limit} }}
           ?s ?p ?o . FILTER(?p IN ({labels})) }}
}}"""


async def describe(ctx: AppContext, iri: str) -> Graph:
    """The dereferenced document's triples, in canonical IRIs."""
    return await construct(ctx, description_query(iri))


def neighbourhood_query(ctx: AppContext, iri: str) -> str:
    """Two hops of summaries for the HTML view: partnerships of a place, partners' positions,
    sources' URLs and publishers, concepts' labels. Not part of the RDF document."""
    r = iri_ref(iri)
    summary = _in(
        [
            *LABEL_PROPS,
            RDF.type,
            SCHEMA.url,
            GEO.lat,
            GEO.long,
            DCTERMS.publisher,
            DCTERMS.description,
            SKOS.inScheme,
            tw(ctx, "partner"),
            tw(ctx, "kind"),
            tw(ctx, "status"),
            tw(ctx, "statusSince"),
            tw(ctx, "startDate"),
            tw(ctx, "startPrecision"),
            tw(ctx, "endDate"),
            tw(ctx, "endPrecision"),
            tw(ctx, "reliability"),
            tw(ctx, "country"),
        ]
    )
    short = _in([*LABEL_PROPS, GEO.lat, GEO.long, SCHEMA.url])
    return f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ {r} ?q ?s . FILTER(!isLiteral(?s)) ?s ?p ?o . FILTER(?p IN ({summary})) }}
  UNION {{ {{ SELECT DISTINCT ?s WHERE {{ ?s ?q {r} }} LIMIT 200 }}
           ?s ?p ?o . FILTER(?p IN ({summary})) }}
  UNION {{ {{ SELECT DISTINCT ?n WHERE {{ ?n ?q {r} }} LIMIT 200 }}
           ?n ?q2 ?s . FILTER(!isLiteral(?s)) ?s ?p ?o . FILTER(?p IN ({short})) }}
  UNION {{ {r} ?q ?n . FILTER(!isLiteral(?n)) ?n ?q2 ?s . FILTER(!isLiteral(?s)) ?s ?p ?o .
           FILTER(?p IN ({short})) }}
}}"""


async def neighbourhood(ctx: AppContext, iri: str) -> Graph:
    return await construct(ctx, neighbourhood_query(ctx, iri))


# ------------------------------------------------------------------ cached per release


@dataclass
class SiteCache:
    """Things that only change with the release; the server serves one release per process."""

    ontology: Graph | None = None
    counts: dict[str, int] | None = None
    catalog: Graph | None = None


_caches: dict[str, SiteCache] = {}


def cache_for(ctx: AppContext) -> SiteCache:
    return _caches.setdefault(ctx.release.version, SiteCache())


async def ontology_graph(ctx: AppContext) -> Graph:
    """The ontology graph `{base}graph/ontology`, queried once per release."""
    cache = cache_for(ctx)
    if cache.ontology is None:
        g = iri_ref(f"{ctx.base_iri}graph/ontology")
        cache.ontology = await construct(
            ctx, f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH {g} {{ ?s ?p ?o }} }}"
        )
    return cache.ontology


def catalog_graph(ctx: AppContext) -> Graph:
    """The release's DCAT catalog (`catalog.ttl`) if the build wrote one; empty otherwise."""
    cache = cache_for(ctx)
    if cache.catalog is None:
        graph = Graph()
        path = ctx.release.file("catalog.ttl")
        if path.is_file():
            try:
                graph.parse(path, format="turtle")
            except Exception:  # noqa: BLE001 - a broken catalog must not break the landing page
                graph = Graph()
        cache.catalog = graph
    return cache.catalog


def count_queries(ctx: AppContext) -> dict[str, str]:
    """The SPARQL COUNTs behind the landing page's numbers (also used by the tests)."""
    place, partnership, source = (f"<{tw(ctx, t)}>" for t in ("Place", "Partnership", "Source"))
    return {
        "places": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a ?c . ?c <{RDFS.subClassOf}>* {place} }}",
        "partnerships": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a {partnership} }}",
        "sources": f"SELECT (COUNT(DISTINCT ?x) AS ?n) WHERE {{ ?x a {source} }}",
        "triples": "SELECT (COUNT(*) AS ?n) WHERE { SELECT DISTINCT ?s ?p ?o WHERE { ?s ?p ?o } }",
    }


async def counts(ctx: AppContext) -> dict[str, int]:
    cache = cache_for(ctx)
    if cache.counts is None:
        out = {}
        for name, query in count_queries(ctx).items():
            rows = await select(ctx, query)
            out[name] = int(rows[0]["n"].toPython()) if rows and "n" in rows[0] else 0
        cache.counts = out
    return cache.counts


# ------------------------------------------------------------------ labels and links


def pick(values: Iterable[Literal], lang: str) -> Literal | None:
    """The literal in `lang`, else English, else German, else untagged, else any (stable)."""
    values = sorted(values, key=lambda v: (v.language or "", str(v)))
    for wanted in (lang, "en", "de", None):
        for value in values:
            if (value.language or None) == wanted:
                return value
    return values[0] if values else None


def curie(iri: str) -> str:
    for prefix, ns in PREFIXES.items():
        if iri.startswith(ns) and len(iri) > len(ns):
            return f"{prefix}:{iri[len(ns) :]}"
    return iri


@dataclass
class Link:
    iri: str
    href: str
    text: str
    ours: bool = False


@dataclass
class Value:
    """One object of a statement: a link or a literal shown with its language/datatype."""

    text: str
    link: Link | None = None
    lang: str | None = None
    datatype: str | None = None


class Labeller:
    """Turns IRIs into links with labels in the requested language."""

    def __init__(self, ctx: AppContext, lang: str, *graphs: Graph) -> None:
        self.ctx, self.lang = ctx, lang
        self.labels: dict[Node, list[Literal]] = defaultdict(list)
        self.partners: dict[Node, set[Node]] = defaultdict(set)
        for graph in graphs:
            self.add(graph)

    def add(self, graph: Graph) -> None:
        for prop in LABEL_PROPS:
            for s, o in graph.subject_objects(prop):
                if isinstance(o, Literal) and o not in self.labels[s]:
                    self.labels[s].append(o)
        # Imported partnerships carry no label of their own: name them after their partners.
        for s, o in graph.subject_objects(tw(self.ctx, "partner")):
            self.partners[s].add(o)

    def label(self, node: Node) -> str:
        best = pick(self.labels.get(node, ()), self.lang)
        if best is not None:
            return str(best)
        partners = self.partners.get(node)
        if partners and len(partners) == 2 and all(self.labels.get(p) for p in partners):
            return " – ".join(sorted(self.label(p) for p in partners))
        iri = str(node)
        if iri.startswith(self.ctx.base_iri):
            return iri[len(self.ctx.base_iri) :]
        return curie(iri)

    def href(self, iri: str) -> str:
        return self.ctx.public(iri)

    def link(self, node: Node) -> Link:
        iri = str(node)
        return Link(
            iri=iri, href=self.href(iri), text=self.label(node), ours=iri.startswith(self.ctx.base_iri)
        )

    def value(self, node: Node) -> Value:
        if isinstance(node, Literal):
            dt = str(node.datatype) if node.datatype else None
            return Value(text=str(node), lang=node.language, datatype=curie(dt) if dt else None)
        if isinstance(node, BNode):
            return Value(text="[…]")
        return Value(text=self.label(node), link=self.link(node))


# ------------------------------------------------------------------ resource view


@dataclass
class Statement:
    prop: Link
    values: list[Value]


@dataclass
class Partner:
    place: Link
    partnership: Link | None = None
    status: Link | None = None
    status_key: str = "unknown"
    kind: Link | None = None
    start: str | None = None
    lat: float | None = None
    lon: float | None = None
    provisional: bool = False  # a tw:ProvisionalPartnership: resting on weak sources only


@dataclass
class ResourceView:
    iri: str
    href: str
    doc_path: str
    label: str
    kind: str
    types: list[Link]
    labels: list[tuple[str, str]]
    statements: list[Statement]
    incoming: list[tuple[Link, Link]]
    extra: dict[str, Any] = field(default_factory=dict)


def superclasses(ontology: Graph, classes: Iterable[Node]) -> set[Node]:
    seen: set[Node] = set()
    todo = list(classes)
    while todo:
        c = todo.pop()
        if c in seen:
            continue
        seen.add(c)
        todo.extend(ontology.objects(c, RDFS.subClassOf))
    return seen


def kind_of(ctx: AppContext, types: set[Node]) -> str:
    if tw(ctx, "Place") in types:
        return "place"
    if tw(ctx, "Partnership") in types:
        return "partnership"
    if tw(ctx, "Source") in types:
        return "source"
    if SKOS.ConceptScheme in types:
        return "scheme"
    if SKOS.Concept in types:
        return "concept"
    return "generic"


def status_key(ctx: AppContext, status: Node | None) -> str:
    """CSS class for a status concept: its last path segment (active, suspended, ended)."""
    if status is None:
        return "unknown"
    iri = str(status)
    prefix = f"{ctx.vocabulary}id/status/"
    return re.sub(r"[^a-z0-9-]", "", iri[len(prefix) :].lower()) if iri.startswith(prefix) else "unknown"


def _float(node: Node | None) -> float | None:
    try:
        return float(node) if isinstance(node, Literal) else None
    except (TypeError, ValueError):
        return None


def format_date(value: Node | None, precision: Node | None, labeller: Labeller) -> str | None:
    if value is None:
        return None
    text = str(value)
    if precision is not None:
        text += f" ({labeller.label(precision)})"
    return text


def resource_view(
    ctx: AppContext, iri: str, doc: Graph, near: Graph, ontology: Graph, lang: str
) -> ResourceView:
    """Everything a resource page shows, from the document graph plus its neighbourhood."""
    node = URIRef(iri)
    whole = doc + near
    labeller = Labeller(ctx, lang, whole, ontology)
    direct_types = set(doc.objects(node, RDF.type))
    kind = kind_of(ctx, superclasses(ontology, direct_types))
    # Outgoing statements, grouped by property (sorted for stable pages).
    by_prop: dict[Node, list[Node]] = defaultdict(list)
    for p, o in doc.predicate_objects(node):
        by_prop[p].append(o)
    statements = [
        Statement(prop=labeller.link(p), values=[labeller.value(o) for o in sorted(os_, key=str)])
        for p, os_ in sorted(by_prop.items(), key=lambda item: str(item[0]))
    ]
    incoming = sorted(
        (
            (labeller.link(s), labeller.link(p))
            for s, p in doc.subject_predicates(node)
            if isinstance(s, URIRef)
        ),
        key=lambda pair: (pair[1].iri, pair[0].text),
    )
    labels = sorted(
        {
            (o.language or "", str(o))
            for p in LABEL_PROPS
            for o in doc.objects(node, p)
            if isinstance(o, Literal)
        }
    )
    view = ResourceView(
        iri=iri,
        href=ctx.public(iri),
        doc_path=iri[len(ctx.base_iri) + len("id/") :],
        label=labeller.label(node),
        kind=kind,
        types=[labeller.link(t) for t in sorted(direct_types, key=str)],
        labels=labels,
        statements=statements,
        incoming=incoming,
    )
    view.extra = _extra(ctx, kind, node, whole, labeller)
    return view


def _sources_of(ctx: AppContext, subject: Node, graph: Graph, labeller: Labeller) -> list[dict[str, Any]]:
    """Sources cited by `subject` (prov:wasDerivedFrom and its sub-properties), with the facts they back."""
    props = [
        PROV.wasDerivedFrom,
        DCTERMS.source,
        *(tw(ctx, t) for t in ("startSource", "statusSource", "kindSource")),
    ]
    found: dict[Node, list[Link]] = {}
    for prop in props:
        for src in graph.objects(subject, prop):
            found.setdefault(src, [])
            if prop != PROV.wasDerivedFrom:
                found[src].append(labeller.link(prop))
    out = []
    for src, roles in sorted(found.items(), key=lambda item: labeller.label(item[0])):
        url = graph.value(src, SCHEMA.url)
        out.append({"link": labeller.link(src), "url": str(url) if url else None, "roles": roles})
    return out


def _partnership_row(ctx: AppContext, ps: Node, place: Node, graph: Graph, labeller: Labeller) -> Partner:
    others = [p for p in graph.objects(ps, tw(ctx, "partner")) if p != place]
    other = others[0] if others else place
    status = graph.value(ps, tw(ctx, "status"))
    kind = graph.value(ps, tw(ctx, "kind"))
    return Partner(
        place=labeller.link(other),
        partnership=labeller.link(ps),
        status=labeller.link(status) if status is not None else None,
        status_key=status_key(ctx, status),
        kind=labeller.link(kind) if kind is not None else None,
        start=format_date(
            graph.value(ps, tw(ctx, "startDate")), graph.value(ps, tw(ctx, "startPrecision")), labeller
        ),
        lat=_float(graph.value(other, GEO.lat)),
        lon=_float(graph.value(other, GEO.long)),
        provisional=(ps, RDF.type, tw(ctx, "ProvisionalPartnership")) in graph,
    )


def _extra(ctx: AppContext, kind: str, node: URIRef, graph: Graph, labeller: Labeller) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    same_as = sorted(str(o) for o in graph.objects(node, OWL.sameAs))
    extra["same_as"] = same_as
    if kind == "place":
        extra["lat"], extra["lon"] = _float(graph.value(node, GEO.lat)), _float(graph.value(node, GEO.long))
        country = graph.value(node, tw(ctx, "country"))
        extra["country"] = labeller.link(country) if country is not None else None
        rows = [
            _partnership_row(ctx, ps, node, graph, labeller)
            for ps in set(graph.subjects(tw(ctx, "partner"), node))
        ]
        rows.sort(key=lambda r: (r.start or "9999", r.place.text))
        extra["partnerships"] = rows
        linked = {r.place.iri for r in rows}
        extra["partners"] = [
            labeller.link(o)
            for o in sorted(graph.objects(node, tw(ctx, "twinnedWith")), key=str)
            if str(o) not in linked
        ]
        extra["sources"] = _sources_of(ctx, node, graph, labeller)
    elif kind == "partnership":
        extra["partners"] = [
            {
                "link": labeller.link(p),
                "lat": _float(graph.value(p, GEO.lat)),
                "lon": _float(graph.value(p, GEO.long)),
            }
            for p in sorted(graph.objects(node, tw(ctx, "partner")), key=str)
        ]
        status = graph.value(node, tw(ctx, "status"))
        kind_ = graph.value(node, tw(ctx, "kind"))
        extra["status"] = labeller.link(status) if status is not None else None
        extra["status_key"] = status_key(ctx, status)
        extra["status_since"] = graph.value(node, tw(ctx, "statusSince"))
        extra["provisional"] = (node, RDF.type, tw(ctx, "ProvisionalPartnership")) in graph
        extra["kind"] = labeller.link(kind_) if kind_ is not None else None
        extra["start"] = format_date(
            graph.value(node, tw(ctx, "startDate")), graph.value(node, tw(ctx, "startPrecision")), labeller
        )
        extra["end"] = format_date(
            graph.value(node, tw(ctx, "endDate")), graph.value(node, tw(ctx, "endPrecision")), labeller
        )
        desc = pick(
            [o for o in graph.objects(node, DCTERMS.description) if isinstance(o, Literal)], labeller.lang
        )
        extra["description"] = str(desc) if desc is not None else None
        extra["sources"] = _sources_of(ctx, node, graph, labeller)
    elif kind == "source":
        url = graph.value(node, SCHEMA.url)
        extra["url"] = str(url) if url else None
        publisher = graph.value(node, DCTERMS.publisher)
        extra["publisher"] = labeller.link(publisher) if publisher is not None else None
        lang_ = graph.value(node, DCTERMS.language)
        extra["language"] = str(lang_) if lang_ is not None else None
        reliability = graph.value(node, tw(ctx, "reliability"))
        extra["reliability"] = labeller.link(reliability) if reliability is not None else None
        source_kind = graph.value(node, tw(ctx, "sourceKind"))
        extra["source_kind"] = str(source_kind) if source_kind is not None else None
    elif kind in ("concept", "scheme"):
        scheme = graph.value(node, SKOS.inScheme)
        extra["scheme"] = labeller.link(scheme) if scheme is not None else None
        definition = pick(
            [o for o in graph.objects(node, SKOS.definition) if isinstance(o, Literal)], labeller.lang
        )
        extra["definition"] = str(definition) if definition is not None else None
        extra["concepts"] = sorted(
            (labeller.link(c) for c in graph.subjects(SKOS.inScheme, node)), key=lambda link: link.text
        )
    return extra


# ------------------------------------------------------------------ landing page


async def hub_partners(
    ctx: AppContext, hub: str, lang: str
) -> tuple[Link | None, tuple[float, float] | None, list[Partner]]:
    """The hub place and every partnership it is in, with partner positions and status."""
    h = iri_ref(hub)
    graph = await construct(
        ctx,
        f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ BIND({h} AS ?s) {h} ?p ?o FILTER(?p IN ({_in([*LABEL_PROPS, GEO.lat, GEO.long])})) }}
  UNION {{ ?s <{tw(ctx, "partner")}> {h} . ?s ?p ?o .
           FILTER(?p IN (<{tw(ctx, "partner")}>, <{tw(ctx, "status")}>, <{tw(ctx, "kind")}>, <{RDF.type}>,
                         <{tw(ctx, "startDate")}>, <{tw(ctx, "startPrecision")}>, {_in(LABEL_PROPS)})) }}
  UNION {{ ?ps <{tw(ctx, "partner")}> {h} . ?ps ?q ?s . FILTER(isIRI(?s)) ?s ?p ?o .
           FILTER(?p IN ({_in([*LABEL_PROPS, GEO.lat, GEO.long])})) }}
}}""",
    )
    node = URIRef(hub)
    if (node, None, None) not in graph:
        return None, None, []
    labeller = Labeller(ctx, lang, graph)
    lat, lon = _float(graph.value(node, GEO.lat)), _float(graph.value(node, GEO.long))
    rows = [
        _partnership_row(ctx, ps, node, graph, labeller)
        for ps in set(graph.subjects(tw(ctx, "partner"), node))
    ]
    rows.sort(key=lambda r: (r.start or "9999", r.place.text))
    return labeller.link(node), (lat, lon) if lat is not None and lon is not None else None, rows


def dataset_text(ctx: AppContext, lang: str) -> tuple[str | None, str | None]:
    """Title and description of the DCAT dataset in the release's catalog, in `lang` if given."""
    graph = catalog_graph(ctx)
    for dataset in sorted(graph.subjects(RDF.type, DCAT.Dataset), key=str):
        title = pick([o for o in graph.objects(dataset, DCTERMS.title) if isinstance(o, Literal)], lang)
        desc = pick([o for o in graph.objects(dataset, DCTERMS.description) if isinstance(o, Literal)], lang)
        if title is not None:
            return str(title), str(desc) if desc is not None else None
    return None, None


def catalog_hubs(ctx: AppContext) -> list[str]:
    """Places of ours named as the dataset's spatial coverage in the catalog."""
    graph = catalog_graph(ctx)
    return sorted(
        str(o)
        for d in graph.subjects(RDF.type, DCAT.Dataset)
        for o in graph.objects(d, DCTERMS.spatial)
        if isinstance(o, URIRef) and str(o).startswith(ctx.base_iri + "id/place/")
    )


def dump_files(ctx: AppContext) -> list[dict[str, Any]]:
    """The downloadable files the release manifest lists (served under /dumps/ by the publication router)."""
    files = ctx.release.manifest.get("files", {}) or {}
    out = []
    for name, meta in sorted(files.items()):
        if name.startswith(DUMP_STEM) or name == "SHA256SUMS":
            meta = meta if isinstance(meta, dict) else {}
            out.append({"name": name, "bytes": meta.get("bytes"), "media_type": meta.get("media_type")})
    if "SHA256SUMS" not in files and ctx.release.file("SHA256SUMS").is_file():
        out.append(
            {
                "name": "SHA256SUMS",
                "bytes": ctx.release.file("SHA256SUMS").stat().st_size,
                "media_type": "text/plain",
            }
        )
    return out


# ------------------------------------------------------------------ ontology page


@dataclass
class Term:
    iri: str
    anchor: str
    labels: dict[str, str]
    comments: dict[str, str]
    facts: list[tuple[str, list[Link]]]


async def ontology_view(ctx: AppContext, lang: str) -> dict[str, Any]:
    """Classes, properties, individuals and concept schemes, with their de/en labels and comments."""
    onto = await ontology_graph(ctx)
    schemes_graph = await construct(
        ctx,
        f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ ?s a <{SKOS.ConceptScheme}> . ?s ?p ?o .
     FILTER(?p IN ({_in([*LABEL_PROPS, RDF.type, SKOS.definition])})) }}
  UNION {{ ?s <{SKOS.inScheme}> ?x . ?s ?p ?o .
           FILTER(?p IN ({_in([*LABEL_PROPS, SKOS.inScheme, SKOS.definition, RDF.type])})) }}
}}""",
    )
    labeller = Labeller(ctx, lang, onto, schemes_graph)
    ns = f"{ctx.vocabulary}ontology#"

    def local(link: Link) -> Link:
        """Terms of this ontology link to their anchor on this very page."""
        if link.iri.startswith(ns):
            link.href = "#" + link.iri[len(ns) :]
        return link

    def term(node: URIRef, fact_props: list[tuple[str, URIRef]]) -> Term:
        def by_lang(prop: URIRef) -> dict[str, str]:
            return {o.language or "": str(o) for o in onto.objects(node, prop) if isinstance(o, Literal)}

        facts = []
        for key, prop in fact_props:
            objects = sorted((o for o in onto.objects(node, prop) if isinstance(o, URIRef)), key=str)
            links = [local(labeller.link(o)) for o in objects]
            if links:
                facts.append((key, links))
        return Term(
            iri=str(node),
            anchor=str(node)[len(ns) :],
            labels=by_lang(RDFS.label),
            comments=by_lang(RDFS.comment),
            facts=facts,
        )

    def ours(kinds: Iterable[URIRef]) -> list[URIRef]:
        found = {
            s
            for k in kinds
            for s in onto.subjects(RDF.type, k)
            if isinstance(s, URIRef) and str(s).startswith(ns)
        }
        return sorted(found, key=str)

    classes = [term(c, [("subclass_of", RDFS.subClassOf)]) for c in ours([OWL.Class, RDFS.Class])]
    props = [
        term(p, [("subproperty_of", RDFS.subPropertyOf), ("domain", RDFS.domain), ("range", RDFS.range)])
        for p in ours(
            [
                OWL.ObjectProperty,
                OWL.DatatypeProperty,
                OWL.AnnotationProperty,
                RDF.Property,
                OWL.SymmetricProperty,
                OWL.FunctionalProperty,
            ]
        )
    ]
    individuals = [term(i, [("types", RDF.type)]) for i in ours([OWL.NamedIndividual])]
    datatypes = [term(d, []) for d in ours([RDFS.Datatype])]
    schemes = []
    for scheme in sorted(schemes_graph.subjects(RDF.type, SKOS.ConceptScheme), key=str):
        concepts = sorted(
            (labeller.link(c) for c in schemes_graph.subjects(SKOS.inScheme, scheme)),
            key=lambda link: link.text,
        )
        schemes.append({"link": labeller.link(scheme), "concepts": concepts})
    ontology_node = URIRef(f"{ctx.base_iri}ontology")
    title = pick([o for o in onto.objects(ontology_node, DCTERMS.title) if isinstance(o, Literal)], lang)
    desc = pick([o for o in onto.objects(ontology_node, DCTERMS.description) if isinstance(o, Literal)], lang)
    return {
        "title": str(title) if title is not None else None,
        "description": str(desc) if desc is not None else None,
        "classes": classes,
        "properties": props,
        "individuals": individuals,
        "datatypes": datatypes,
        "schemes": schemes,
        "namespace": ctx.public(ns),
    }
