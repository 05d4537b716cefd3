"""The front door: the landing page `/` (map, counts, partnerships, downloads) and the favicon.

The landing page has no RDF of its own (the dataset is described by `/catalog`), so it
offers only the page: `Accept: text/turtle` gets 406 with that said (docs/web.md).
"""

from __future__ import annotations

from typing import Any

from rdflib import Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from twinning_kg.query.negotiation import NegotiationError
from twinning_kg.release.catalog_parts import MAIN_DATASET
from twinning_kg.release.reader import DUMP_STEM
from twinning_kg.vocab import GEO
from twinning_kg.web import schema_org, site_queries, svgmap
from twinning_kg.web.context import AppContext, context, site_settings
from twinning_kg.web.i18n import Strings
from twinning_kg.web.labels import Labeller, Link, pick
from twinning_kg.web.rendering import STATIC, language, render
from twinning_kg.web.responses import PAGE, engine_failed, negotiate, negotiation_failed
from twinning_kg.web.site_queries import LABEL_PROPS, iri_ref, tw, values_in
from twinning_kg.web.views.publication import served_files
from twinning_kg.web.views.resources import Partner, coordinate, partnership_row, sort_partners

FAVICON = STATIC / "site" / "favicon.ico"


async def landing(request: Request) -> Response:
    ctx = context(request)
    try:
        negotiate(request, PAGE)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    lang = language(request)
    s = Strings(lang)
    try:
        numbers = await site_queries.counts(ctx)
        hub_iri = hub(ctx)
        found, hub_pos, partners = await hub_partners(ctx, hub_iri, lang) if hub_iri else (None, None, [])
        markup = await dataset_markup(ctx, lang)
    except Exception as exc:  # noqa: BLE001 - any engine failure is a 503 page
        return engine_failed(request, exc)
    title, description = dataset_text(ctx, lang)
    map_svg = ""
    if found is not None and hub_pos is not None:
        hub_point = svgmap.Point(
            lat=hub_pos[0], lon=hub_pos[1], label=found.text, href=found.href, iri=found.iri, hub=True
        )
        points = svgmap.partner_markers(partners)
        map_svg = svgmap.render([hub_point, *points], lines_from=hub_point, title=s.map_title)
    return render(
        request,
        "landing.html",
        lang=lang,
        title=title or s.default_title,
        description=description or s.default_description,
        counts=numbers,
        map_svg=map_svg,
        hub=found,
        partners=partners,
        statuses=sorted({(p.status_key, p.status.text) for p in partners if p.status is not None}),
        unmapped=[p.place for p in partners if p.lat is None or p.lon is None],
        dumps=dump_files(ctx),
        version=ctx.release.version,
        json_ld=schema_org.script(markup) if markup else None,
    )


async def favicon(request: Request) -> Response:
    """`/favicon.ico`, where browsers look first; the pages name it with <link rel=icon>."""
    return FileResponse(
        FAVICON, media_type="image/vnd.microsoft.icon", headers={"Cache-Control": "public, max-age=86400"}
    )


def hub(ctx: AppContext) -> str | None:
    """The place the landing map centres on: the catalog's spatial coverage, else site.toml's hub."""
    hubs = catalog_hubs(ctx)
    if hubs:
        return hubs[0]
    relative = site_settings().get("map", {}).get("hub")
    return ctx.base_iri + relative if relative else None


async def hub_partners(
    ctx: AppContext, hub_iri: str, lang: str
) -> tuple[Link | None, tuple[float, float] | None, list[Partner]]:
    """The hub place and every partnership it is in, with partner positions and status."""
    h = iri_ref(hub_iri)
    partner = tw(ctx, "partner")
    summary = values_in(
        [
            partner,
            tw(ctx, "status"),
            tw(ctx, "kind"),
            RDF.type,
            tw(ctx, "startDate"),
            tw(ctx, "startPrecision"),
            *LABEL_PROPS,
        ]
    )
    located = values_in([*LABEL_PROPS, GEO.lat, GEO.long])
    graph = await site_queries.construct(
        ctx,
        f"""CONSTRUCT {{ ?s ?p ?o }} WHERE {{
  {{ BIND({h} AS ?s) {h} ?p ?o FILTER(?p IN ({located})) }}
  UNION {{ ?s <{partner}> {h} . ?s ?p ?o . FILTER(?p IN ({summary})) }}
  UNION {{ ?ps <{partner}> {h} . ?ps ?q ?s . FILTER(isIRI(?s)) ?s ?p ?o . FILTER(?p IN ({located})) }}
}}""",
    )
    node = URIRef(hub_iri)
    if (node, None, None) not in graph:
        return None, None, []
    labeller = Labeller(ctx, lang, graph)
    lat, lon = coordinate(graph.value(node, GEO.lat)), coordinate(graph.value(node, GEO.long))
    rows = sort_partners(
        [partnership_row(ctx, ps, node, graph, labeller) for ps in set(graph.subjects(partner, node))]
    )
    return labeller.link(node), (lat, lon) if lat is not None and lon is not None else None, rows


async def dataset_markup(ctx: AppContext, lang: str) -> dict[str, Any] | None:
    """The schema.org `Dataset` of the release's main dataset (the one the dumps belong to),
    from its catalog, its manifest and, for the places it covers, the graph; once per
    release and language."""

    async def build() -> dict[str, Any] | None:
        catalog = site_queries.catalog_graph(ctx)
        node = URIRef(ctx.base_iri + MAIN_DATASET + ctx.settings.city_key)
        if (node, RDF.type, DCAT.Dataset) not in catalog:
            return None
        ontology = await site_queries.ontology_graph(ctx)
        fallback = schema_org.fallback_types(site_settings(), ctx.base_iri)
        places = {}
        for spatial in sorted(catalog.objects(node, DCTERMS.spatial), key=str):
            if isinstance(spatial, URIRef) and str(spatial).startswith(ctx.base_iri + "id/"):
                graph = await site_queries.describe(ctx, str(spatial))
                if (spatial, None, None) in graph:
                    places[str(spatial)] = schema_org.thing(
                        spatial, graph, ontology, lang, ctx.public, fallback, tw=str(tw(ctx, ""))
                    )
        return schema_org.dataset(
            catalog,
            node,
            lang,
            ctx.public,
            page_url=ctx.public(ctx.base_iri),
            media_types={name: meta["media_type"] for name, meta in served_files(ctx).items()},
            places=places,
        )

    return await ctx.memo_async(f"schema.org dataset {lang}", build)


def dataset_text(ctx: AppContext, lang: str) -> tuple[str | None, str | None]:
    """Title and description of the DCAT dataset in the release's catalog, in `lang` if given."""
    graph = site_queries.catalog_graph(ctx)
    for dataset in sorted(graph.subjects(RDF.type, DCAT.Dataset), key=str):
        title = pick([o for o in graph.objects(dataset, DCTERMS.title) if isinstance(o, Literal)], lang)
        desc = pick([o for o in graph.objects(dataset, DCTERMS.description) if isinstance(o, Literal)], lang)
        if title is not None:
            return str(title), str(desc) if desc is not None else None
    return None, None


def catalog_hubs(ctx: AppContext) -> list[str]:
    """Places of ours named as the dataset's spatial coverage in the catalog."""
    graph = site_queries.catalog_graph(ctx)
    return sorted(
        str(o)
        for d in graph.subjects(RDF.type, DCAT.Dataset)
        for o in graph.objects(d, DCTERMS.spatial)
        if isinstance(o, URIRef) and str(o).startswith(ctx.base_iri + "id/place/")
    )


def dump_files(ctx: AppContext) -> list[dict[str, Any]]:
    """The downloadable files the release manifest lists (served under /dumps/)."""
    files = ctx.release.manifest.get("files", {}) or {}
    out = []
    for name, meta in sorted(files.items()):
        if name.startswith(DUMP_STEM) or name == "SHA256SUMS":
            meta = meta if isinstance(meta, dict) else {}
            out.append({"name": name, "bytes": meta.get("bytes"), "media_type": meta.get("media_type")})
    return out
