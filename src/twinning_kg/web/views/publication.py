"""What open-data portals and other graphs fetch: `/catalog`, `/.well-known/void`, `/dumps/`,
and `/about`, the page the catalog's contact point names by default.

- `/catalog` (DCAT-AP 3 / DCAT-AP.de 3.0) and `/.well-known/void` (VoID §7.2) serve the
  release's `catalog.ttl` and `void.ttl`, negotiated like every resource (docs/web.md):
  Turtle for `*/*` and harvesters, the other RDF syntaxes, or the page for browsers; with
  our IRIs in this server's IRI space (`AppContext.localize`), so every download URL,
  example resource and graph name in them can be followed and queried here.
- The IRIs the catalog and VoID mint (`/dataset/…`, `/distribution/…`, `/service/…`,
  `/void`, `/void/…`) answer 303 See Other to the document that describes them.
- `/dumps/{file}` serves only files the release manifest lists, as stored: `.gz` files
  are `application/gzip` with no Content-Encoding, so what a client saves has exactly
  the byte size and SHA-256 the catalog states. A file has one representation, so it is
  not negotiated (RFC 9110 §12.1). Its ETag is the manifest's SHA-256 of the file.
- `/about` says who runs this deployment and how to reach them, read from the catalog's
  `dcat:contactPoint` (what `twinning-kg build --contact-…` configured), so the page and
  what harvesters read can never disagree; plus version, date and licences of the release.
"""

from __future__ import annotations

from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from rdflib import Graph, Literal, URIRef
from rdflib.term import Node
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response

from twinning_kg.query.negotiation import NegotiationError
from twinning_kg.vocab import DCAT, DCTERMS, FOAF, RDF, RDFS, SD, SKOS, SPDX, VCARD, VOID
from twinning_kg.web.compression import accepts_gzip
from twinning_kg.web.context import AppContext, context
from twinning_kg.web.rendering import language, render
from twinning_kg.web.responses import PAGE, RDF_PAGE, negotiate, negotiation_failed, not_found, rdf, rdf_body

SUMS = "SHA256SUMS"
FALLBACK_MEDIA_TYPES = {
    ".ttl": "text/turtle",
    ".nt": "application/n-triples",
    ".nq": "application/n-quads",
    ".jsonld": "application/ld+json",
    ".rdf": "application/rdf+xml",
    ".gz": "application/gzip",
}
LABELS = (SKOS.prefLabel, RDFS.label, FOAF.name, DCTERMS.title)
# The IRIs the catalog and VoID mint, and the document describing each (303 there).
DESCRIBED_IN = {
    "dataset": "/catalog",
    "distribution": "/catalog",
    "service": "/catalog",
    "void": "/.well-known/void",
}


# ------------------------------------------------------------------ routes


async def catalog(request: Request) -> Response:
    """The DCAT-AP 3 catalog."""
    return _description(request, "catalog.ttl", "catalog.html", catalog_view)


async def void(request: Request) -> Response:
    """The VoID description (VoID §7.2: the well-known location)."""
    return _description(request, "void.ttl", "void.html", void_view)


async def described_elsewhere(request: Request) -> Response:
    """A dataset, distribution, service or VoID part: 303 to the document that describes it."""
    first = request.url.path.strip("/").split("/", 1)[0]
    return RedirectResponse(DESCRIBED_IN[first], status_code=303)


async def named_graph(request: Request) -> Response:
    """A named graph of the release (`{base}graph/…`, the `sd:name` the VoID and the service
    description give): 303 to the VoID, which describes it (size, licence, dumps). A name
    the release does not hold is 404."""
    ctx = context(request)
    iri = ctx.base_iri + "graph/" + request.path_params["name"]
    if iri not in ctx.release.manifest.get("graphs", {}):
        return not_found(request, ctx.public(iri))
    return RedirectResponse(DESCRIBED_IN["void"], status_code=303)


async def about(request: Request) -> Response:
    """Who runs this deployment and how to reach them (the catalog's contact point)."""
    ctx = context(request)
    try:
        negotiate(request, PAGE)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    if not ctx.release.file("catalog.ttl").is_file():
        return not_found(request, "catalog.ttl (rebuild the release: twinning-kg build)")
    lang = language(request)
    graph = described(ctx, "catalog.ttl")
    return render(
        request, "about.html", lang=lang, **about_view(graph, lang, ctx.public(ctx.base_iri + "about"))
    )


async def dumps_slash(request: Request) -> Response:
    return RedirectResponse("/dumps/", status_code=301)


async def dumps_index(request: Request) -> Response:
    """An HTML index of the downloadable files with sizes and SHA-256 sums."""
    ctx = context(request)
    try:
        negotiate(request, PAGE)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    files = [{"name": name, **meta} for name, meta in served_files(ctx).items()]
    return render(request, "dumps.html", files=files, version=ctx.release.version, sums=SUMS)


async def dump(request: Request) -> Response:
    """One file of the release, exactly as the build wrote it (gzip-coded from its `.gz` twin
    when the client accepts gzip)."""
    ctx = context(request)
    name = request.path_params["name"]
    info = served_files(ctx).get(name)
    path = ctx.release.file(name)
    if info is None or "/" in name or not path.is_file():
        return PlainTextResponse(
            f"404 Not Found: no file {name!r} in this release; see /dumps/\n", status_code=404
        )
    etag = f'"{info["sha256"]}"' if info.get("sha256") else ctx.release.etag
    headers = {
        "ETag": etag,
        "Last-Modified": ctx.release.last_modified,
        "Cache-Control": "public, max-age=3600",
    }
    twin = ctx.release.file(name + ".gz")
    wants_gzip = accepts_gzip(request.headers.get("accept-encoding"))
    if wants_gzip and name + ".gz" in served_files(ctx) and twin.is_file():
        # The build's gzip twin is this file gzipped: sent as its content coding, a download
        # costs no compression and its length is known before it starts. (Unencoded, the
        # gzip layer adds the Vary itself.)
        path = twin
        headers["Content-Encoding"] = "gzip"
        headers["Vary"] = "Accept-Encoding"
        headers["ETag"] = etag = etag[:-1] + '-gzip"'
    if not_modified(request, etag, headers["Last-Modified"]):
        return Response(status_code=304, headers=headers)
    return FileResponse(path, media_type=info["media_type"], headers=headers)


# ------------------------------------------------------------------ helpers


def _description(
    request: Request, file_name: str, template: str, view: Callable[..., dict[str, Any]]
) -> Response:
    ctx = context(request)
    try:
        offer = negotiate(request, RDF_PAGE)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    if not ctx.release.file(file_name).is_file():
        return not_found(request, f"{file_name} (rebuild the release: twinning-kg build)")
    graph = described(ctx, file_name)
    if offer.key == "html":
        lang = language(request)
        return render(request, template, lang=lang, **view(graph, lang))
    body = ctx.memo(f"{file_name} as {offer.key}", lambda: rdf_body(graph, offer))
    return rdf(graph, offer, {"Last-Modified": ctx.release.last_modified}, body)


def described(ctx: AppContext, file_name: str) -> Graph:
    """`catalog.ttl` or `void.ttl` of the release, in this server's IRI space (once per release)."""

    def read() -> Graph:
        source = Graph()
        source.parse(ctx.release.file(file_name), format="turtle")
        return ctx.localize(source)

    return ctx.memo(f"described {file_name}", read)


def not_modified(request: Request, etag: str, last_modified: str | None) -> bool:
    """RFC 9110 §13.1: If-None-Match wins; If-Modified-Since only when it is absent."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    ims = request.headers.get("if-modified-since")
    if ims and last_modified:
        try:
            return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def served_files(ctx: AppContext) -> dict[str, dict]:
    """Manifest files (name -> bytes, sha256, media_type), plus SHA256SUMS when present."""
    files: dict[str, dict] = {}
    for name, meta in sorted((ctx.release.manifest.get("files") or {}).items()):
        meta = dict(meta) if isinstance(meta, dict) else {}
        suffix = "." + name.rsplit(".", 1)[-1]
        meta.setdefault("media_type", FALLBACK_MEDIA_TYPES.get(suffix, "application/octet-stream"))
        files[name] = meta
    if SUMS not in files and ctx.release.file(SUMS).is_file():
        files[SUMS] = {"media_type": "text/plain", "bytes": ctx.release.file(SUMS).stat().st_size}
    if SUMS in files:
        files[SUMS]["media_type"] = "text/plain"
    return files


# ------------------------------------------------------------------ the pages' models


def _text(graph: Graph, node: Node | None, props: tuple[URIRef, ...], lang: str) -> str | None:
    """The value of the first property that has one, in `lang` if there, else English, else any."""
    if node is None:
        return None
    for prop in props:
        values = sorted((o for o in graph.objects(node, prop) if isinstance(o, Literal)), key=str)
        for wanted in (lang, "en", None):
            for value in values:
                if wanted is None or value.language == wanted:
                    return str(value)
    return None


def _link(graph: Graph, node: Node | None, lang: str) -> dict[str, str] | None:
    if node is None:
        return None
    return {"href": str(node), "text": _text(graph, node, LABELS, lang) or str(node)}


def authority(iri: str) -> str:
    """Who names a place by this IRI, for people: its host without `www.`/`sws.`."""
    host = urlsplit(iri).netloc
    for prefix in ("www.", "sws."):
        host = host.removeprefix(prefix)
    return host or iri


def places(graph: Graph, nodes: list[Node], lang: str) -> list[dict[str, Any]]:
    """Spatial coverage, one entry per name: "Kassel" once, with each authority's IRI for it
    (GeoNames, our own place, the official municipality key) rather than "Kassel, Kassel"."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for node in nodes:
        text = _text(graph, node, LABELS, lang) or str(node)
        grouped.setdefault(text, []).append({"href": str(node), "text": authority(str(node))})
    return [{"text": text, "links": links} for text, links in grouped.items()]


def catalog_view(graph: Graph, lang: str) -> dict[str, Any]:
    """What the catalog page shows, read from the (localized) catalog graph."""
    catalog_node = next(iter(sorted(graph.subjects(RDF.type, DCAT.Catalog))), None)
    datasets = []
    for ds in sorted(graph.objects(catalog_node, DCAT.dataset)):
        distributions = []
        for dist in sorted(graph.objects(ds, DCAT.distribution)):
            checksum = graph.value(dist, SPDX.checksum)
            distributions.append(
                {
                    "title": _text(graph, dist, (DCTERMS.title,), lang),
                    "url": str(
                        graph.value(dist, DCAT.downloadURL) or graph.value(dist, DCAT.accessURL) or ""
                    ),
                    "media_type": _text(graph, graph.value(dist, DCAT.mediaType), LABELS, lang),
                    "compressed": graph.value(dist, DCAT.compressFormat) is not None,
                    "bytes": graph.value(dist, DCAT.byteSize),
                    "sha256": graph.value(checksum, SPDX.checksumValue) if checksum is not None else None,
                    "license": _link(graph, graph.value(dist, DCTERMS.license), lang),
                }
            )
        period = graph.value(ds, DCTERMS.temporal)
        rights = {graph.value(d, DCTERMS.rights) for d in graph.objects(ds, DCAT.distribution)} - {None}
        datasets.append(
            {
                "iri": str(ds),
                "title": _text(graph, ds, (DCTERMS.title,), lang),
                "description": _text(graph, ds, (DCTERMS.description,), lang),
                "keywords": sorted(str(k) for k in graph.objects(ds, DCAT.keyword) if k.language == lang),
                "publisher": _link(graph, graph.value(ds, DCTERMS.publisher), lang),
                "contact": _link(graph, graph.value(graph.value(ds, DCAT.contactPoint), VCARD.hasURL), lang),
                "spatial": places(graph, sorted(graph.objects(ds, DCTERMS.spatial)), lang),
                "start": graph.value(period, DCAT.startDate) if period is not None else None,
                "themes": [_link(graph, o, lang) for o in sorted(graph.objects(ds, DCAT.theme))],
                "issued": graph.value(ds, DCTERMS.issued),
                "modified": graph.value(ds, DCTERMS.modified),
                "version": graph.value(ds, DCAT.version),
                "rights": [_text(graph, r, LABELS, lang) for r in sorted(rights)],
                "distributions": distributions,
            }
        )
    services = [
        {
            "title": _text(graph, s, (DCTERMS.title,), lang),
            "description": _text(graph, s, (DCTERMS.description,), lang),
            "endpoint": str(graph.value(s, DCAT.endpointURL)),
        }
        for s in sorted(graph.objects(catalog_node, DCAT.service))
    ]
    return {
        "title": _text(graph, catalog_node, (DCTERMS.title,), lang) or "Catalog",
        "description": _text(graph, catalog_node, (DCTERMS.description,), lang),
        "license": _link(graph, graph.value(catalog_node, DCTERMS.license), lang),
        "datasets": datasets,
        "services": services,
    }


def about_view(graph: Graph, lang: str, page: str) -> dict[str, Any]:
    """What the about page shows, read from the (localized) catalog graph: the datasets'
    contact points, the publisher, the release's version and date, the licences.

    `page`: this page's own URL, which the default contact point names; it is not shown
    as a channel of its own."""
    catalog_node = next(iter(sorted(graph.subjects(RDF.type, DCAT.Catalog))), None)
    datasets = sorted(graph.objects(catalog_node, DCAT.dataset))
    contacts = sorted({c for d in datasets for c in graph.objects(d, DCAT.contactPoint)})
    distributions = [dist for d in datasets for dist in graph.objects(d, DCAT.distribution)]
    licences = {graph.value(d, DCTERMS.license) for d in distributions} - {None}
    rights = {graph.value(d, DCTERMS.rights) for d in distributions} - {None}
    return {
        "title": _text(graph, catalog_node, (DCTERMS.title,), lang) or "twinning-kg",
        "description": _text(graph, catalog_node, (DCTERMS.description,), lang),
        "contacts": [
            {
                "name": _text(graph, c, (VCARD.fn,), lang),
                "emails": sorted(str(o).removeprefix("mailto:") for o in graph.objects(c, VCARD.hasEmail)),
                "pages": sorted(
                    str(o) for o in graph.objects(c, VCARD.hasURL) if str(o).split("#")[0] != page
                ),
            }
            for c in contacts
        ],
        "publisher": _link(graph, graph.value(catalog_node, DCTERMS.publisher), lang),
        "version": graph.value(catalog_node, DCAT.version),
        "modified": graph.value(catalog_node, DCTERMS.modified),
        "licences": [_link(graph, lic, lang) for lic in sorted(licences)],
        "rights": [_text(graph, r, LABELS, lang) for r in sorted(rights)],
        "catalog_licence": _link(graph, graph.value(catalog_node, DCTERMS.license), lang),
    }


def void_view(graph: Graph, lang: str) -> dict[str, Any]:
    """What the VoID page shows, read from the (localized) VoID graph."""
    root = next(iter(sorted(graph.subjects(VOID.classPartition, None))), None) or next(
        iter(sorted(graph.subjects(RDF.type, VOID.Dataset))), None
    )

    def num(node: Node | None, prop: URIRef) -> int | None:
        value = graph.value(node, prop) if node is not None else None
        return int(value) if isinstance(value, Literal) else None

    totals = [
        (name, num(root, VOID[name]))
        for name in ("triples", "entities", "distinctSubjects", "distinctObjects", "classes", "properties")
    ]
    subsets, linksets = [], []
    for subset in sorted(graph.objects(root, VOID.subset)):
        if (subset, RDF.type, VOID.Linkset) in graph:
            target = graph.value(subset, VOID.objectsTarget)
            linksets.append(
                {
                    "title": _text(graph, subset, (DCTERMS.title,), lang) or str(subset),
                    "predicate": str(graph.value(subset, VOID.linkPredicate)),
                    "target": {
                        "href": str(graph.value(target, FOAF.homepage) or target),
                        "text": _text(graph, target, LABELS, lang) or str(target),
                    },
                    "space": str(graph.value(target, VOID.uriSpace) or ""),
                    "triples": num(subset, VOID.triples),
                    "license": _link(graph, graph.value(subset, DCTERMS.license), lang),
                }
            )
        else:
            subsets.append(
                {
                    "title": _text(graph, subset, (DCTERMS.title,), lang),
                    "graph": str(graph.value(subset, SD.name) or subset),
                    "triples": num(subset, VOID.triples),
                    "license": _link(graph, graph.value(subset, DCTERMS.license), lang),
                }
            )

    def largest_first(row: tuple[str, int | None]) -> tuple[int, str]:
        return -(row[1] or 0), row[0]

    classes = sorted(
        (
            (str(graph.value(p, VOID["class"])), num(p, VOID.entities))
            for p in graph.objects(root, VOID.classPartition)
        ),
        key=largest_first,
    )
    properties = sorted(
        (
            (str(graph.value(p, VOID.property)), num(p, VOID.triples))
            for p in graph.objects(root, VOID.propertyPartition)
        ),
        key=largest_first,
    )
    return {
        "title": _text(graph, root, (DCTERMS.title,), lang) or "VoID",
        "description": _text(graph, root, (DCTERMS.description,), lang),
        "root": str(root),
        "totals": totals,
        "endpoint": str(graph.value(root, VOID.sparqlEndpoint) or ""),
        "uri_space": str(graph.value(root, VOID.uriSpace) or ""),
        "dumps": sorted(str(d) for d in graph.objects(root, VOID.dataDump)),
        "examples": sorted(str(e) for e in graph.objects(root, VOID.exampleResource)),
        "vocabularies": sorted(str(v) for v in graph.objects(root, VOID.vocabulary)),
        "subsets": subsets,
        "linksets": linksets,
        "classes": classes,
        "properties": properties,
    }
