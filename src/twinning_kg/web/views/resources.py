"""Things and their documents: `/id/…` answers 303 See Other to `/doc/…`.

Why 303 (Cool URIs for the Semantic Web §4.3): every `{base}id/…` IRI names a thing
(a city, a partnership), not a web page. A 303 tells clients "the description is over
there" without claiming the city *is* the document, and keeps the IRIs slash-shaped and
stable. The document `{base}doc/…` is negotiated like every resource (`web.responses`,
docs/web.md): Turtle, N-Triples, JSON-LD, RDF/XML or the HTML page, `?format=` first.
The redirect keeps `?format=` and `?lang=`, so a link to a thing in a given language or
syntax arrives there.

Every read goes through the query engine; a failing engine gives a clear 503, never a 500.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, OWL, RDF, RDFS, SKOS
from rdflib.term import Node
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from twinning_kg.graph.claims import Claim, short
from twinning_kg.query.negotiation import NegotiationError
from twinning_kg.vocab import GEO, PROV, SCHEMA
from twinning_kg.web import partner_confirmation, schema_org, site_queries, svgmap
from twinning_kg.web.audit_report import difference_text
from twinning_kg.web.context import AppContext, context, site_settings
from twinning_kg.web.i18n import Strings, format_date
from twinning_kg.web.labels import PREFIXES, Labeller, Link, Value, pick
from twinning_kg.web.rendering import language, render
from twinning_kg.web.responses import (
    RDF_PAGE,
    VARY,
    engine_failed,
    negotiate,
    negotiation_failed,
    not_found,
    rdf,
)
from twinning_kg.web.site_queries import LABEL_PROPS, UnsafeIri, tw
from twinning_kg.web.views.audit_page import claims_about

log = logging.getLogger(__name__)
SAFE = "/:@!$&'()*+,;=-._~"  # what a path segment may hold unescaped (RFC 3986)


# ------------------------------------------------------------------ routes


async def thing(request: Request) -> Response:
    """`/id/{path}`: 303 to the document, or 404 when we hold nothing about it."""
    ctx = context(request)
    path = request.path_params["path"]
    iri = canonical_of(ctx, path)
    try:
        held = bool(path) and await site_queries.holds(ctx, iri)
    except UnsafeIri:
        held = False
    except Exception as exc:  # noqa: BLE001 - any engine failure is a 503 page
        return engine_failed(request, exc)
    if not held:
        return not_found(request, ctx.public(iri))
    if ctx.settings.base_url:
        target = _quote_url(ctx.public(ctx.base_iri + "doc/" + path))  # under the configured --base-url
    else:
        # Relative (RFC 9110 §10.2.2): never an absolute URL built from the Host header.
        target = "/doc/" + quote(path, safe=SAFE)
    return RedirectResponse(target + kept_query(request), status_code=303, headers={"Vary": VARY})


async def document(request: Request) -> Response:
    """`/doc/{path}`: the description of a thing, in the negotiated representation."""
    ctx = context(request)
    path = request.path_params["path"]
    iri = canonical_of(ctx, path)
    try:
        site_queries.iri_ref(iri)
    except UnsafeIri:
        return not_found(request, ctx.public(iri))
    try:
        doc = await site_queries.describe(ctx, iri)
    except Exception as exc:  # noqa: BLE001
        return engine_failed(request, exc)
    node = URIRef(iri)
    if not path or (node, None, None) not in doc:
        return not_found(request, ctx.public(iri))  # before negotiation: what is not there is 404
    try:
        offer = negotiate(request, RDF_PAGE)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    headers = {"Content-Location": "/doc/" + quote(path, safe=SAFE) + f"?format={offer.key}"}
    if offer.key != "html":
        doc_iri = URIRef(ctx.base_iri + "doc/" + path)
        doc.add((doc_iri, RDF.type, FOAF.Document))
        doc.add((doc_iri, FOAF.primaryTopic, node))
        label = Labeller(ctx, "en", doc).label(node)
        doc.add((doc_iri, DCTERMS.title, Literal(f"Description of {label}", lang="en")))
        return rdf(ctx.localize(with_prefixes(ctx, doc)), offer, headers)
    try:
        near = await site_queries.neighbourhood(ctx, iri)
        ontology = await site_queries.ontology_graph(ctx)
    except Exception as exc:  # noqa: BLE001
        return engine_failed(request, exc)
    lang = language(request)
    view = resource_view(ctx, iri, doc, near, ontology, lang)
    confirmation = await partner_confirmation.confirmation(ctx, iri) if view.kind == "partnership" else None
    return render(
        request,
        "resource.html",
        lang=lang,
        headers=headers,
        view=view,
        map_svg=resource_map(view, Strings(lang)),
        claims=await _claims(ctx, iri),
        confirmation=confirmation,
        difference=lambda d: difference_text(d, lang, lambda value: short(value, ctx.base_iri)),
        base_iri=ctx.base_iri,
        formats=[o for o in RDF_PAGE if o.key != "html"],
        title=view.label,
        incoming_limit=site_queries.INCOMING_LIMIT,
        json_ld=schema_org.script(markup(ctx, node, path, doc + near, ontology, lang, view.label)),
    )


def markup(
    ctx: AppContext, node: URIRef, path: str, graph: Graph, ontology: Graph, lang: str, label: str
) -> dict[str, Any]:
    """schema.org for a resource page (`web.schema_org`): the page, about the thing; a
    partnership's page mentions its two places and covers its period; every page cites the
    sources its statements rest on."""
    fallback = schema_org.fallback_types(site_settings(), ctx.base_iri)
    ns = str(tw(ctx, ""))

    def ref(other: Node) -> dict[str, Any]:
        return schema_org.reference(other, graph, ontology, lang, ctx.public, fallback)

    main = schema_org.thing(node, graph, ontology, lang, ctx.public, fallback, tw=ns, name=label)
    cited = {src for prop in SOURCE_PROPS(ctx) for src in graph.objects(node, prop)}
    partnership = (node, RDF.type, tw(ctx, "Partnership")) in graph or any(
        (node, RDF.type, c) in graph for c in ontology.subjects(RDFS.subClassOf, tw(ctx, "Partnership"))
    )
    home = ctx.public_base
    site = {"@type": "WebSite", "@id": home, "url": home, "name": Strings(lang).site_title}
    return schema_org.item_page(
        doc_url(ctx, path),
        lang,
        main,
        site=site,
        mentions=[ref(p) for p in sorted(graph.objects(node, tw(ctx, "partner")), key=str)],
        citations=[ref(src) for src in sorted(cited, key=str)],
        temporal=schema_org.interval(
            graph.value(node, tw(ctx, "startDate")), graph.value(node, tw(ctx, "endDate"))
        )
        if partnership
        else None,
    )


def doc_url(ctx: AppContext, path: str) -> str:
    """The public URL of the document about `{base}id/{path}` (non-ASCII percent-encoded)."""
    return _quote_url(ctx.public(ctx.base_iri + "doc/" + path))


# ------------------------------------------------------------------ helpers shared by the views


def canonical_of(ctx: AppContext, path: str) -> str:
    """The IRI a request path under /id/ or /doc/ stands for."""
    return ctx.base_iri + "id/" + path


def kept_query(request: Request, names: tuple[str, ...] = ("format", "lang")) -> str:
    """`?format=…&lang=…` as the request had them: a redirect keeps the reader's choices."""
    kept = [(n, request.query_params[n]) for n in names if n in request.query_params]
    return ("?" + "&".join(f"{n}={quote(v, safe='')}" for n, v in kept)) if kept else ""


def _quote_url(url: str) -> str:
    """Percent-encode what is not allowed in a URL path (non-ASCII keys), keep the rest."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + quote(rest, safe=SAFE + "%")


def with_prefixes(ctx: AppContext, graph: Graph) -> Graph:
    """A copy of `graph` with our prefixes bound (tw:, place:, partnership:, …)."""
    out = Graph(bind_namespaces="none")
    for triple in graph:
        out.add(triple)
    for prefix, ns in PREFIXES.items():
        out.bind(prefix, ns, override=True)
    out.bind("tw", f"{ctx.vocabulary}ontology#", override=True)
    # One prefix per IRI family of ours (place:, partnership:, source:, …), as found in the graph.
    families = set()
    for term in out.all_nodes():
        iri = str(term)
        if isinstance(term, URIRef) and iri.startswith(ctx.base_iri + "id/"):
            rest = iri[len(ctx.base_iri) + 3 :]
            if "/" in rest:
                families.add(rest.split("/", 1)[0])
    for family in sorted(families):
        if family.isidentifier():
            out.bind(family, f"{ctx.base_iri}id/{family}/", override=True)
    return out


async def _claims(ctx: AppContext, iri: str) -> list[Claim]:
    """Claims about `iri`; the page shows without them when they cannot be read."""
    try:
        return await claims_about(ctx, iri)
    except Exception as exc:  # noqa: BLE001 - the page still shows without claims
        log.warning("claims_about(%s) failed: %s", iri, exc)
        return []


# ------------------------------------------------------------------ the resource page's model


@dataclass
class Statement:
    prop: Link
    values: list[Value]


@dataclass(frozen=True)
class When:
    """A calendar value as the page's language writes it, and as written in the data."""

    text: str
    iso: str


@dataclass
class Partner:
    place: Link
    partnership: Link | None = None
    status: Link | None = None
    status_key: str = "unknown"
    kind: Link | None = None
    start: When | None = None
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


def superclasses(ontology: Graph, classes: set[Node]) -> set[Node]:
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


def coordinate(node: Node | None) -> float | None:
    try:
        return float(node) if isinstance(node, Literal) else None
    except (TypeError, ValueError):
        return None


def when(value: Node | None, precision: Node | None, lang: str) -> When | None:
    """A date of the data to the precision its precision concept states, in `lang`."""
    if value is None:
        return None
    key = str(precision).rsplit("/", 1)[-1] if precision is not None else None
    return When(format_date(str(value), key, lang), str(value))


def resource_view(
    ctx: AppContext, iri: str, doc: Graph, near: Graph, ontology: Graph, lang: str
) -> ResourceView:
    """Everything a resource page shows, from the document graph plus its neighbourhood."""
    node = URIRef(iri)
    whole = doc + near
    labeller = Labeller(ctx, lang, whole, ontology)
    direct_types = set(doc.objects(node, RDF.type))
    kind = kind_of(ctx, superclasses(ontology, direct_types))
    by_prop: dict[Node, list[Node]] = defaultdict(list)
    for p, o in doc.predicate_objects(node):
        by_prop[p].append(o)
    statements = [
        Statement(prop=labeller.link(p), values=[labeller.value(o) for o in sorted(objects, key=str)])
        for p, objects in sorted(by_prop.items(), key=lambda item: str(item[0]))
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


def SOURCE_PROPS(ctx: AppContext) -> list[URIRef]:  # noqa: N802 - a constant of the base IRI
    """The properties by which a resource cites its sources."""
    return [
        PROV.wasDerivedFrom,
        DCTERMS.source,
        *(tw(ctx, t) for t in ("startSource", "statusSource", "kindSource")),
    ]


def _sources_of(ctx: AppContext, subject: Node, graph: Graph, labeller: Labeller) -> list[dict[str, Any]]:
    """Sources cited by `subject` (prov:wasDerivedFrom and its sub-properties), with the facts they back."""
    props = SOURCE_PROPS(ctx)
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


def partnership_row(ctx: AppContext, ps: Node, place: Node, graph: Graph, labeller: Labeller) -> Partner:
    """One row of a place's partnerships: the other partner, kind, start, status."""
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
        start=when(
            graph.value(ps, tw(ctx, "startDate")), graph.value(ps, tw(ctx, "startPrecision")), labeller.lang
        ),
        lat=coordinate(graph.value(other, GEO.lat)),
        lon=coordinate(graph.value(other, GEO.long)),
        provisional=(ps, RDF.type, tw(ctx, "ProvisionalPartnership")) in graph,
    )


def sort_partners(rows: list[Partner]) -> list[Partner]:
    """Oldest first (by the date as written: ISO order), undated last, then by name."""
    return sorted(rows, key=lambda r: (r.start.iso if r.start else "9999", r.place.text))


def _extra(ctx: AppContext, kind: str, node: URIRef, graph: Graph, labeller: Labeller) -> dict[str, Any]:
    extra: dict[str, Any] = {"same_as": sorted(str(o) for o in graph.objects(node, OWL.sameAs))}
    lang = labeller.lang
    if kind == "place":
        extra["lat"], extra["lon"] = (
            coordinate(graph.value(node, GEO.lat)),
            coordinate(graph.value(node, GEO.long)),
        )
        country = graph.value(node, tw(ctx, "country"))
        extra["country"] = labeller.link(country) if country is not None else None
        rows = sort_partners(
            [
                partnership_row(ctx, ps, node, graph, labeller)
                for ps in set(graph.subjects(tw(ctx, "partner"), node))
            ]
        )
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
                "lat": coordinate(graph.value(p, GEO.lat)),
                "lon": coordinate(graph.value(p, GEO.long)),
            }
            for p in sorted(graph.objects(node, tw(ctx, "partner")), key=str)
        ]
        status = graph.value(node, tw(ctx, "status"))
        kind_ = graph.value(node, tw(ctx, "kind"))
        extra["status"] = labeller.link(status) if status is not None else None
        extra["status_key"] = status_key(ctx, status)
        extra["status_since"] = when(graph.value(node, tw(ctx, "statusSince")), None, lang)
        extra["provisional"] = (node, RDF.type, tw(ctx, "ProvisionalPartnership")) in graph
        extra["kind"] = labeller.link(kind_) if kind_ is not None else None
        extra["start"] = when(
            graph.value(node, tw(ctx, "startDate")), graph.value(node, tw(ctx, "startPrecision")), lang
        )
        extra["end"] = when(
            graph.value(node, tw(ctx, "endDate")), graph.value(node, tw(ctx, "endPrecision")), lang
        )
        desc = pick([o for o in graph.objects(node, DCTERMS.description) if isinstance(o, Literal)], lang)
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
        definition = pick([o for o in graph.objects(node, SKOS.definition) if isinstance(o, Literal)], lang)
        extra["definition"] = str(definition) if definition is not None else None
        extra["concepts"] = sorted(
            (labeller.link(c) for c in graph.subjects(SKOS.inScheme, node)), key=lambda link: link.text
        )
    return extra


def resource_map(view: ResourceView, s: Strings) -> str:
    """A small locator map for places (the place and its partners) and partnerships (both partners)."""
    if view.kind == "place" and view.extra.get("lat") is not None and view.extra.get("lon") is not None:
        me = svgmap.Point(
            lat=view.extra["lat"],
            lon=view.extra["lon"],
            label=view.label,
            href=view.href,
            iri=view.iri,
            hub=True,
        )
        others = svgmap.partner_markers(view.extra.get("partnerships", []))
        return svgmap.render(
            [me, *others],
            lines_from=me if others else None,
            width=640,
            height=420,
            title=f"{s.map}: {view.label}",
        )
    if view.kind == "partnership":
        located = [p for p in view.extra.get("partners", []) if p["lat"] is not None and p["lon"] is not None]
        points = [
            svgmap.Point(
                lat=p["lat"],
                lon=p["lon"],
                label=p["link"].text,
                href=p["link"].href,
                iri=p["link"].iri,
                css=f"status-{view.extra.get('status_key', 'unknown')}",
            )
            for p in located
        ]
        if points:
            return svgmap.render(
                points,
                lines_from=points[0] if len(points) > 1 else None,
                width=640,
                height=420,
                title=f"{s.map}: {view.label}",
            )
    return ""
