"""What portals' harvesters and other graphs fetch: `/catalog`, `/.well-known/void`, `/dumps/`,
and `/about`, the page the catalog's contact point names by default.

- `/catalog` and `/.well-known/void` serve the release's `catalog.ttl` and `void.ttl` in
  Turtle, RDF/XML, JSON-LD or N-Triples by Accept (`?format=ttl|rdf|jsonld|nt` wins), with
  our IRIs rewritten to the host the server is reached at (`ctx.localize`), so every
  download URL in them can be followed on a developer's machine too.
- The IRIs the catalog and VoID mint (`/dataset/…`, `/distribution/…`, `/service/…`,
  `/void`, `/void/…`) answer 303 See Other to the document that describes them.
- `/dumps/{file}` serves only files the release manifest lists (plus `SHA256SUMS`), as
  stored: `.gz` files are `application/gzip` with no Content-Encoding, so what a client
  saves has exactly the byte size and SHA-256 the catalog states (a Content-Encoding
  would make HTTP clients unpack it on the fly). ETag is the manifest's SHA-256 of the file.
- `/about` says who runs this deployment and how to reach them, read from the catalog's
  `dcat:contactPoint` (what `twinning-kg build --contact-…` configured), so the page and
  what harvesters read can never disagree; plus version, date and licences of the release.
"""

from __future__ import annotations

import hashlib
from email.utils import parsedate_to_datetime
from pathlib import Path
from threading import Lock
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from rdflib import Graph, Literal, URIRef
from rdflib.term import Node

from twinning_kg.vocab import DCAT, DCTERMS, FOAF, RDF, RDFS, SD, SKOS, SPDX, VCARD, VOID
from twinning_kg.web.context import AppContext
from twinning_kg.web.i18n import LANGUAGES, Strings, negotiate_language

TEMPLATES = Path(__file__).resolve().parent / "templates"
VCARD_URL = VCARD.hasURL

# ?format= key -> (media type, rdflib serializer); the first is the default for */*.
FORMATS: dict[str, tuple[str, str]] = {
    "ttl": ("text/turtle", "turtle"),
    "rdf": ("application/rdf+xml", "xml"),
    "jsonld": ("application/ld+json", "json-ld"),
    "nt": ("application/n-triples", "nt"),
}
ALIASES = {"application/x-turtle": "ttl", "application/json": "jsonld", "text/plain": "nt"}
# A page for browsers, only when text/html is named and preferred: `*/*` still gets Turtle.
HTML_TYPES = ("text/html", "application/xhtml+xml")
SUMS = "SHA256SUMS"
FALLBACK_MEDIA_TYPES = {
    ".ttl": "text/turtle", ".nt": "application/n-triples", ".nq": "application/n-quads",
    ".jsonld": "application/ld+json", ".rdf": "application/rdf+xml", ".gz": "application/gzip",
}
VARY = "Accept, Accept-Language"


def negotiate(accept: str | None) -> str:
    """The format key for an Accept header: highest q, then the more specific range, then
    our order. Nothing acceptable -> Turtle anyway (RFC 9110 allows ignoring Accept).
    "html" only when an HTML type is named outright and ranks first."""
    offers = [(key, media) for key, (media, _) in FORMATS.items()] + [(k, m) for m, k in ALIASES.items()]
    offers += [("html", media) for media in HTML_TYPES]
    best: tuple[float, int, int] | None = None
    chosen = "ttl"
    for _index, part in enumerate((accept or "*/*").split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        q = 1.0
        for param in fields[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if q <= 0:
            continue
        for order, (key, offer) in enumerate(offers):
            major = offer.split("/")[0]
            specificity = 2 if media == offer else 1 if media == f"{major}/*" else 0 if media == "*/*" else -1
            if specificity < 0 or (key == "html" and specificity < 2):
                continue
            rank = (q, specificity, -order)
            if best is None or rank > best:
                best, chosen = rank, key
    return chosen


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


class Description:
    """One of the release's RDF descriptions, localized and serialized once per format."""

    def __init__(self, ctx: AppContext, file_name: str, template: str, view: Any) -> None:
        self.ctx, self.file_name = ctx, file_name
        self.template, self.view = template, view
        self._graph: Graph | None = None
        self._bodies: dict[str, bytes] = {}
        self._release: Path | None = None  # the release the cache above was filled from
        self._lock = Lock()

    def available(self) -> bool:
        return self.ctx.release.file(self.file_name).is_file()

    def graph(self) -> Graph:
        with self._lock:
            if self._release != self.ctx.release.path:  # the server switched releases
                self._graph, self._bodies, self._release = None, {}, self.ctx.release.path
            if self._graph is None:
                source = Graph()
                source.parse(self.ctx.release.file(self.file_name), format="turtle")
                self._graph = self.ctx.localize(source)
            return self._graph

    def body(self, key: str) -> bytes:
        graph = self.graph()
        with self._lock:
            if key not in self._bodies:
                fmt = FORMATS[key][1]
                options = {}
                if fmt == "json-ld":  # compact, with our prefixes as the @context
                    iris = {str(t) for triple in graph for t in triple if isinstance(t, URIRef)}
                    context = {p: str(ns) for p, ns in graph.namespaces()
                               if p and any(iri.startswith(str(ns)) for iri in iris)}
                    options = {"context": context, "auto_compact": True}
                self._bodies[key] = graph.serialize(format=fmt, encoding="utf-8", **options)
            return self._bodies[key]

    def respond(self, request: Request) -> Response:
        if not self.available():
            return PlainTextResponse(
                f"404 Not Found: this release has no {self.file_name}; rebuild it: `twinning-kg build`\n",
                status_code=404,
            )
        key = request.query_params.get("format")
        if key is None:
            key = negotiate(request.headers.get("accept"))
        elif key not in (*FORMATS, "html"):
            return PlainTextResponse(
                f"400 Bad Request: unknown format {key!r}; use one of {', '.join(FORMATS)}, html\n",
                status_code=400,
            )
        if key == "html":
            return render_page(request, self.template, lambda lang: self.view(self.graph(), lang))
        body = self.body(key)
        media = FORMATS[key][0]
        headers = {
            "ETag": f'"{hashlib.sha256(body).hexdigest()[:32]}"',
            "Last-Modified": self.ctx.release.last_modified,
            "Vary": VARY,
        }
        if not_modified(request, headers["ETag"], headers["Last-Modified"]):
            return Response(status_code=304, headers=headers)
        charset = "; charset=utf-8" if media.startswith("text/") else ""
        return Response(body, media_type=media + charset, headers=headers)


def make_router(ctx: AppContext) -> APIRouter:
    router = APIRouter()
    catalog = Description(ctx, "catalog.ttl", "publication_catalog.html", catalog_view)
    void = Description(ctx, "void.ttl", "publication_void.html", void_view)

    @router.api_route("/catalog", methods=["GET", "HEAD"], include_in_schema=False)
    async def get_catalog(request: Request) -> Response:
        """The DCAT-AP 3 catalog."""
        return catalog.respond(request)

    @router.api_route("/.well-known/void", methods=["GET", "HEAD"], include_in_schema=False)
    async def get_void(request: Request) -> Response:
        """The VoID description (VoID §7.2: the well-known location)."""
        return void.respond(request)

    # Things the catalog and VoID name (non-information resources): 303 to their description.
    described_in = {"/dataset/{rest:path}": "/catalog", "/distribution/{rest:path}": "/catalog",
                    "/service/{rest:path}": "/catalog", "/void": "/.well-known/void",
                    "/void/{rest:path}": "/.well-known/void"}
    for path, location in described_in.items():
        router.add_api_route(path, _see_other(location), methods=["GET", "HEAD"], include_in_schema=False)

    @router.api_route("/about", methods=["GET", "HEAD"], include_in_schema=False)
    async def about(request: Request) -> Response:
        """Who runs this deployment and how to reach them (the catalog's contact point)."""
        if not catalog.available():
            return PlainTextResponse("404 Not Found: this release has no catalog.ttl; rebuild it\n",
                                     status_code=404)
        return render_page(request, "publication_about.html",
                           lambda lang: about_view(catalog.graph(), lang, ctx.public(ctx.base_iri + "about")))

    @router.api_route("/dumps", methods=["GET", "HEAD"], include_in_schema=False)
    async def dumps_slash() -> Response:
        return RedirectResponse("/dumps/", status_code=301)

    @router.api_route("/dumps/", methods=["GET", "HEAD"], include_in_schema=False)
    async def dumps_index(request: Request) -> Response:
        """An HTML index of the downloadable files with sizes and SHA-256 sums."""
        files = [{"name": name, **meta} for name, meta in _served_files(ctx).items()]
        return render_page(request, "publication_dumps.html",
                           lambda lang: {"files": files, "version": ctx.release.version, "sums": SUMS})

    @router.api_route("/dumps/{name}", methods=["GET", "HEAD"], include_in_schema=False)
    async def dump(name: str, request: Request) -> Response:
        """One file of the release, exactly as the build wrote it."""
        info = _served_files(ctx).get(name)
        path = ctx.release.file(name)
        if info is None or "/" in name or not path.is_file():
            return PlainTextResponse(f"404 Not Found: no file {name!r} in this release; see /dumps/\n",
                                     status_code=404)
        etag = f'"{info["sha256"]}"' if info.get("sha256") else ctx.release.etag
        headers = {"ETag": etag, "Last-Modified": ctx.release.last_modified,
                   "Cache-Control": "public, max-age=3600"}
        if not_modified(request, etag, headers["Last-Modified"]):
            return Response(status_code=304, headers=headers)
        return FileResponse(path, media_type=info["media_type"], headers=headers)

    return router


def _see_other(location: str):  # noqa: ANN202 - an endpoint function
    async def redirect() -> Response:
        return RedirectResponse(location, status_code=303)

    return redirect


def _served_files(ctx: AppContext) -> dict[str, dict]:
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


# --- HTML views for browsers (harvesters get RDF: HTML only when asked for by name) -----------

_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)
LABELS = (SKOS.prefLabel, RDFS.label, FOAF.name, DCTERMS.title)


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


def catalog_view(graph: Graph, lang: str) -> dict[str, Any]:
    """What the catalog page shows, read from the (localized) catalog graph."""
    catalog = next(iter(sorted(graph.subjects(RDF.type, DCAT.Catalog))), None)
    datasets = []
    for ds in sorted(graph.objects(catalog, DCAT.dataset)):
        distributions = []
        for dist in sorted(graph.objects(ds, DCAT.distribution)):
            checksum = graph.value(dist, SPDX.checksum)
            distributions.append({
                "title": _text(graph, dist, (DCTERMS.title,), lang),
                "url": str(graph.value(dist, DCAT.downloadURL) or graph.value(dist, DCAT.accessURL) or ""),
                "media_type": _text(graph, graph.value(dist, DCAT.mediaType), LABELS, lang),
                "compressed": graph.value(dist, DCAT.compressFormat) is not None,
                "bytes": graph.value(dist, DCAT.byteSize),
                "sha256": graph.value(checksum, SPDX.checksumValue) if checksum is not None else None,
                "license": _link(graph, graph.value(dist, DCTERMS.license), lang),
            })
        period = graph.value(ds, DCTERMS.temporal)
        rights = {graph.value(d, DCTERMS.rights) for d in graph.objects(ds, DCAT.distribution)} - {None}
        datasets.append({
            "iri": str(ds),
            "title": _text(graph, ds, (DCTERMS.title,), lang),
            "description": _text(graph, ds, (DCTERMS.description,), lang),
            "keywords": sorted(str(k) for k in graph.objects(ds, DCAT.keyword) if k.language == lang),
            "publisher": _link(graph, graph.value(ds, DCTERMS.publisher), lang),
            "contact": _link(graph, graph.value(graph.value(ds, DCAT.contactPoint), VCARD_URL), lang),
            "spatial": [_link(graph, o, lang) for o in sorted(graph.objects(ds, DCTERMS.spatial))],
            "start": graph.value(period, DCAT.startDate) if period is not None else None,
            "themes": [_link(graph, o, lang) for o in sorted(graph.objects(ds, DCAT.theme))],
            "issued": graph.value(ds, DCTERMS.issued),
            "modified": graph.value(ds, DCTERMS.modified),
            "version": graph.value(ds, DCAT.version),
            "rights": [_text(graph, r, LABELS, lang) for r in sorted(rights)],
            "distributions": distributions,
        })
    services = [{"title": _text(graph, s, (DCTERMS.title,), lang),
                 "description": _text(graph, s, (DCTERMS.description,), lang),
                 "endpoint": str(graph.value(s, DCAT.endpointURL))}
                for s in sorted(graph.objects(catalog, DCAT.service))]
    return {"title": _text(graph, catalog, (DCTERMS.title,), lang) or "Catalog",
            "description": _text(graph, catalog, (DCTERMS.description,), lang),
            "license": _link(graph, graph.value(catalog, DCTERMS.license), lang),
            "datasets": datasets, "services": services}


def about_view(graph: Graph, lang: str, page: str) -> dict[str, Any]:
    """What the about page shows, read from the (localized) catalog graph: the datasets'
    contact points, the publisher, the release's version and date, the licences.

    `page`: this page's own URL, which the default contact point names; it is not shown
    as a channel of its own."""
    catalog = next(iter(sorted(graph.subjects(RDF.type, DCAT.Catalog))), None)
    datasets = sorted(graph.objects(catalog, DCAT.dataset))
    contacts = sorted({c for d in datasets for c in graph.objects(d, DCAT.contactPoint)})
    distributions = [dist for d in datasets for dist in graph.objects(d, DCAT.distribution)]
    licences = {graph.value(d, DCTERMS.license) for d in distributions} - {None}
    rights = {graph.value(d, DCTERMS.rights) for d in distributions} - {None}
    return {
        "title": _text(graph, catalog, (DCTERMS.title,), lang) or "twinning-kg",
        "description": _text(graph, catalog, (DCTERMS.description,), lang),
        "contacts": [{
            "name": _text(graph, c, (VCARD.fn,), lang),
            "emails": sorted(str(o).removeprefix("mailto:") for o in graph.objects(c, VCARD.hasEmail)),
            "pages": sorted(str(o) for o in graph.objects(c, VCARD.hasURL) if str(o).split("#")[0] != page),
        } for c in contacts],
        "publisher": _link(graph, graph.value(catalog, DCTERMS.publisher), lang),
        "version": graph.value(catalog, DCAT.version),
        "modified": graph.value(catalog, DCTERMS.modified),
        "licences": [_link(graph, lic, lang) for lic in sorted(licences)],
        "rights": [_text(graph, r, LABELS, lang) for r in sorted(rights)],
        "catalog_licence": _link(graph, graph.value(catalog, DCTERMS.license), lang),
    }


def void_view(graph: Graph, lang: str) -> dict[str, Any]:
    """What the VoID page shows, read from the (localized) VoID graph."""
    root = next(iter(sorted(graph.subjects(VOID.classPartition, None))), None) or next(
        iter(sorted(graph.subjects(RDF.type, VOID.Dataset))), None)

    def num(node: Node | None, prop: URIRef) -> int | None:
        value = graph.value(node, prop) if node is not None else None
        return int(value) if isinstance(value, Literal) else None

    totals = [(name, num(root, VOID[name])) for name in
              ("triples", "entities", "distinctSubjects", "distinctObjects", "classes", "properties")]
    subsets, linksets = [], []
    for subset in sorted(graph.objects(root, VOID.subset)):
        if (subset, RDF.type, VOID.Linkset) in graph:
            target = graph.value(subset, VOID.objectsTarget)
            linksets.append({"title": _text(graph, subset, (DCTERMS.title,), lang) or str(subset),
                             "predicate": str(graph.value(subset, VOID.linkPredicate)),
                             "target": _link(graph, graph.value(target, FOAF.homepage) or target, lang)
                             | {"text": _text(graph, target, LABELS, lang) or str(target)},
                             "space": str(graph.value(target, VOID.uriSpace) or ""),
                             "triples": num(subset, VOID.triples),
                             "license": _link(graph, graph.value(subset, DCTERMS.license), lang)})
        else:
            subsets.append({"title": _text(graph, subset, (DCTERMS.title,), lang),
                            "graph": str(graph.value(subset, SD.name) or subset),
                            "triples": num(subset, VOID.triples),
                            "license": _link(graph, graph.value(subset, DCTERMS.license), lang)})
    def largest_first(row: tuple[str, int | None]) -> tuple[int, str]:
        return -(row[1] or 0), row[0]

    classes = sorted(((str(graph.value(p, VOID["class"])), num(p, VOID.entities))
                      for p in graph.objects(root, VOID.classPartition)), key=largest_first)
    properties = sorted(((str(graph.value(p, VOID.property)), num(p, VOID.triples))
                         for p in graph.objects(root, VOID.propertyPartition)), key=largest_first)
    return {"title": _text(graph, root, (DCTERMS.title,), lang) or "VoID",
            "description": _text(graph, root, (DCTERMS.description,), lang),
            "root": str(root), "totals": totals,
            "endpoint": str(graph.value(root, VOID.sparqlEndpoint) or ""),
            "uri_space": str(graph.value(root, VOID.uriSpace) or ""),
            "dumps": sorted(str(d) for d in graph.objects(root, VOID.dataDump)),
            "examples": sorted(str(e) for e in graph.objects(root, VOID.exampleResource)),
            "vocabularies": sorted(str(v) for v in graph.objects(root, VOID.vocabulary)),
            "subsets": subsets, "linksets": linksets, "classes": classes, "properties": properties}


def render_page(request: Request, template: str, values: Any) -> HTMLResponse:
    """A page in the site's layout (base.html), German or English as the request asks;
    `values(lang)` gives the template's variables."""
    lang = negotiate_language(request.query_params.get("lang"), request.headers.get("accept-language"))
    other = next(code for code in LANGUAGES if code != lang)
    other_href = f"{request.url.path}?{urlencode({**request.query_params, 'lang': other})}"
    body = _env.get_template(template).render(
        s=Strings(lang), lang=lang, other_lang=other, other_lang_href=other_href, path=request.url.path,
        **values(lang),
    ).encode("utf-8")
    headers = {"Vary": "Accept, Accept-Language", "Content-Language": lang,
               "ETag": f'"{hashlib.sha256(body).hexdigest()[:32]}"'}
    return HTMLResponse(body, headers=headers)
