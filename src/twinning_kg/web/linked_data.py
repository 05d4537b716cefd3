"""Linked data: `/id/…` things 303 to `/doc/…` documents, `/ontology`, and the landing page `/`.

Why 303 (Cool URIs for the Semantic Web §4.3): every `{base}id/…` IRI names a thing
(a city, a partnership), not a web page. A 303 See Other tells clients "the description
is over there" without claiming the city *is* the document, and keeps the IRIs
slash-shaped and stable. The document `{base}doc/…` is then content negotiated
(HTML, Turtle, N-Triples, JSON-LD, RDF/XML; `?format=` overrides) with `Vary: Accept`.
The ontology uses a hash namespace, so `/ontology` answers directly.

Every read goes through `ctx.engine`; a failing engine gives a clear 503 page, never a 500.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, OWL, RDF

from twinning_kg.graph.claims import Claim
from twinning_kg.web import pages, partner_confirmation, svgmap
from twinning_kg.web.audit_routes import claims_about
from twinning_kg.web.context import AppContext
from twinning_kg.web.i18n import LANGUAGES, Strings, negotiate_language

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
SITE_SETTINGS = Path(__file__).resolve().parent / "site.toml"


@dataclass(frozen=True)
class Format:
    key: str  # the `?format=` value
    media_type: str
    rdflib: str | None  # serializer name; None for HTML
    aliases: tuple[str, ...] = ()


# Server preference order: HTML first, so `Accept: */*` (curl, no header) gets a page;
# RDF clients name their types and win on q.
FORMATS = (
    Format("html", "text/html", None, ("application/xhtml+xml",)),
    Format("ttl", "text/turtle", "turtle", ("application/x-turtle", "text/n3")),
    Format("nt", "application/n-triples", "nt", ()),
    Format("jsonld", "application/ld+json", "json-ld", ("application/json",)),
    Format("rdf", "application/rdf+xml", "xml", ()),
)
BY_KEY = {f.key: f for f in FORMATS}
VARY = "Accept, Accept-Language"


class BadFormat(ValueError):
    pass


def _accept_ranges(header: str) -> list[tuple[str, float]]:
    out = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        q = 1.0
        for param in fields[1:]:
            if param.lower().startswith("q="):
                try:
                    q = max(0.0, min(1.0, float(param[2:])))
                except ValueError:
                    q = 0.0
        out.append((media, q))
    return out


def negotiate(request: Request, formats: tuple[Format, ...] = FORMATS) -> Format | None:
    """`?format=` wins; else the best q of Accept (most specific range per type); None = 406."""
    key = request.query_params.get("format")
    if key is not None:
        if key not in BY_KEY or BY_KEY[key] not in formats:
            raise BadFormat(key)
        return BY_KEY[key]
    header = request.headers.get("accept", "").strip()
    if not header:
        return formats[0]
    ranges = _accept_ranges(header)
    best: tuple[float, int] | None = None
    chosen = None
    for index, fmt in enumerate(formats):
        q_for: tuple[int, float] | None = None  # (specificity, q)
        for media, q in ranges:
            for name in (fmt.media_type, *fmt.aliases):
                major = name.split("/")[0]
                spec = 3 if media == name else 2 if media == f"{major}/*" else 1 if media == "*/*" else 0
                if spec and (q_for is None or spec > q_for[0]):
                    q_for = (spec, q)
        if q_for and q_for[1] > 0 and (best is None or q_for[1] > best[0]):
            best, chosen = (q_for[1], index), fmt
    return chosen


def _site_settings() -> dict[str, Any]:
    import tomllib

    try:
        with SITE_SETTINGS.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, ValueError):
        return {}


def make_router(ctx: AppContext) -> APIRouter:
    router = APIRouter()
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["public"] = ctx.public
    env.filters["num"] = _number
    env.globals["incoming_limit"] = pages.INCOMING_LIMIT
    site = _site_settings()

    def language(request: Request) -> str:
        return negotiate_language(request.query_params.get("lang"), request.headers.get("accept-language"))

    def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        lang = values.pop("lang", None) or language(request)
        other = next(code for code in LANGUAGES if code != lang)
        html = env.get_template(template).render(
            s=Strings(lang),
            lang=lang,
            other_lang=other,
            other_lang_href=_with_params(request, lang=other),
            path=request.url.path,
            **values,
        )
        headers = {"Vary": VARY, "Content-Language": lang}
        if status == 200:
            # One strong validator per representation: the page differs by language (RFC 9110 §8.8.3).
            headers["ETag"] = _etag(ctx, f"html-{lang}")
        return HTMLResponse(html, status_code=status, headers=headers)

    def wants_html(request: Request) -> bool:
        try:
            fmt = negotiate(request)
        except BadFormat:
            return False
        return fmt is not None and fmt.key == "html"

    def error(
        request: Request,
        status: int,
        title_key: str,
        text_key: str,
        detail: str = "",
        extra: list[str] | None = None,
    ) -> Response:
        if wants_html(request):
            return render(
                request,
                "error.html",
                status=status,
                status_code=status,
                title_key=title_key,
                text_key=text_key,
                detail=detail,
                extra=extra or [],
            )
        s = Strings(language(request))
        body = f"{status} {s[title_key]}: {s[text_key]}"
        body += f" {' '.join(extra)}" if extra else ""
        body += f"\n{detail}\n" if detail else "\n"
        return PlainTextResponse(body, status_code=status, headers={"Vary": VARY})

    def engine_failed(request: Request, exc: Exception) -> Response:
        log.warning("linked-data page %s: engine failed: %s", request.url.path, exc)
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        return error(request, 503, "unavailable", "unavailable_text", detail=message)

    def not_acceptable(request: Request, formats: tuple[Format, ...]) -> Response:
        offered = [f"{f.media_type} (?format={f.key})" for f in formats]
        return PlainTextResponse(
            "406 Not Acceptable: none of the formats in Accept is available. Available: "
            + ", ".join(offered)
            + "\n",
            status_code=406,
            headers={"Vary": VARY},
        )

    def bad_format(request: Request, key: str, formats: tuple[Format, ...]) -> Response:
        return PlainTextResponse(
            f"400 Bad Request: unknown format {key!r}; use one of: {', '.join(f.key for f in formats)}\n",
            status_code=400,
            headers={"Vary": VARY},
        )

    def canonical_of(path: str) -> str:
        """The IRI a request path under /id/ or /doc/ stands for."""
        return ctx.canonical(ctx.public_base + "id/" + path)

    # ---------------------------------------------------------------- /id/ -> 303

    @router.api_route("/id/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def thing(request: Request, path: str) -> Response:
        iri = canonical_of(path)
        try:
            held = bool(path) and await pages.holds(ctx, iri)
        except pages.UnsafeIri:
            held = False
        except Exception as exc:  # noqa: BLE001 - any engine failure is a 503 page
            return engine_failed(request, exc)
        if not held:
            return error(request, 404, "not_found", "not_found_text", detail=iri)
        if ctx.public_base != ctx.base_iri:
            target = ctx.public(ctx.base_iri + "doc/" + path)  # under the configured --base-url
        else:
            # Relative (RFC 9110 §10.2.2): never an absolute URL built from the Host header.
            target = "/doc/" + path
        target = _quote_url(target) + _query(request, "format", "lang")
        return RedirectResponse(target, status_code=303, headers={"Vary": VARY})

    # ---------------------------------------------------------------- /doc/ documents

    @router.api_route("/doc/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
    async def document(request: Request, path: str) -> Response:
        try:
            fmt = negotiate(request)
        except BadFormat as exc:
            return bad_format(request, str(exc), FORMATS)
        if fmt is None:
            return not_acceptable(request, FORMATS)
        iri = canonical_of(path)
        try:
            pages.iri_ref(iri)
        except pages.UnsafeIri:
            return error(request, 404, "not_found", "not_found_text", detail=iri)
        try:
            doc = await pages.describe(ctx, iri)
        except Exception as exc:  # noqa: BLE001
            return engine_failed(request, exc)
        node = URIRef(iri)
        if not path or (node, None, None) not in doc:
            return error(request, 404, "not_found", "not_found_text", detail=iri)
        location = "/doc/" + quote(path, safe=_SAFE) + f"?format={fmt.key}"
        headers = {"Vary": VARY, "Content-Location": location}
        if fmt.rdflib is None:
            try:
                near = await pages.neighbourhood(ctx, iri)
                ontology = await pages.ontology_graph(ctx)
            except Exception as exc:  # noqa: BLE001
                return engine_failed(request, exc)
            lang = language(request)
            view = pages.resource_view(ctx, iri, doc, near, ontology, lang)
            map_svg = _resource_map(view, Strings(lang))
            claims = await _claims(ctx, iri)
            is_partnership = view.kind == "partnership"
            confirmed = await partner_confirmation.confirmation(ctx, iri) if is_partnership else None
            response = render(
                request,
                "resource.html",
                lang=lang,
                view=view,
                map_svg=map_svg,
                claims=claims,
                confirmation=confirmed,
                base_iri=ctx.base_iri,
                formats=FORMATS,
                title=view.label,
            )
            response.headers.update(headers)
            return response
        doc_iri = URIRef(ctx.base_iri + "doc/" + path)
        doc.add((doc_iri, RDF.type, FOAF.Document))
        doc.add((doc_iri, FOAF.primaryTopic, node))
        label = pages.Labeller(ctx, "en", doc).label(node)
        doc.add((doc_iri, DCTERMS.title, Literal(f"Description of {label}", lang="en")))
        return _rdf_response(ctx, doc, fmt, headers)

    # ---------------------------------------------------------------- /ontology

    @router.api_route("/ontology", methods=["GET", "HEAD"], include_in_schema=False)
    async def ontology(request: Request) -> Response:
        try:
            fmt = negotiate(request)
        except BadFormat as exc:
            return bad_format(request, str(exc), FORMATS)
        if fmt is None:
            return not_acceptable(request, FORMATS)
        headers = {"Vary": VARY, "Content-Location": f"/ontology?format={fmt.key}"}
        try:
            if fmt.rdflib is not None:
                graph = await pages.ontology_graph(ctx)
                return _rdf_response(ctx, graph, fmt, headers)
            lang = language(request)
            view = await pages.ontology_view(ctx, lang)
        except Exception as exc:  # noqa: BLE001
            return engine_failed(request, exc)
        response = render(
            request,
            "ontology.html",
            lang=lang,
            onto=view,
            formats=FORMATS,
            title=view["title"] or Strings(lang).ontology,
        )
        response.headers.update(headers)
        return response

    @router.api_route("/ontology/{version}", methods=["GET", "HEAD"], include_in_schema=False)
    async def ontology_version(request: Request, version: str) -> Response:
        """The owl:versionIRI of the ontology: the current version is the document at /ontology
        (303 there, format kept); earlier versions are not kept online (404)."""
        try:
            graph = await pages.ontology_graph(ctx)
        except Exception as exc:  # noqa: BLE001
            return engine_failed(request, exc)
        current = graph.value(URIRef(f"{ctx.base_iri}ontology"), OWL.versionIRI)
        wanted = f"{ctx.base_iri}ontology/{version}"
        if current is None or str(current) != wanted:
            return error(request, 404, "not_found", "not_found_text", detail=wanted)
        target = str(request.base_url) + "ontology" + _query(request, "format", "lang")
        return RedirectResponse(target, status_code=303, headers={"Vary": VARY})

    # ---------------------------------------------------------------- landing page

    @router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def landing(request: Request) -> Response:
        lang = language(request)
        s = Strings(lang)
        try:
            numbers = await pages.counts(ctx)
            hub_iri = _hub(ctx, site)
            hub, hub_pos, partners = (
                await pages.hub_partners(ctx, hub_iri, lang) if hub_iri else (None, None, [])
            )
        except Exception as exc:  # noqa: BLE001
            return engine_failed(request, exc)
        title, description = pages.dataset_text(ctx, lang)
        map_svg = ""
        if hub is not None and hub_pos is not None:
            hub_point = svgmap.Point(
                lat=hub_pos[0], lon=hub_pos[1], label=hub.text, href=hub.href, iri=hub.iri, hub=True
            )
            points = [
                svgmap.Point(
                    lat=p.lat,
                    lon=p.lon,
                    label=p.place.text,
                    href=p.place.href,
                    iri=p.place.iri,
                    css=f"status-{p.status_key}",
                )
                for p in partners
                if p.lat is not None and p.lon is not None
            ]
            map_svg = svgmap.render([hub_point, *points], lines_from=hub_point, title=s.map_title)
        statuses = sorted({(p.status_key, p.status.text) for p in partners if p.status is not None})
        unmapped = [p.place for p in partners if p.lat is None or p.lon is None]
        return render(
            request,
            "landing.html",
            lang=lang,
            title=title or s.default_title,
            description=description or s.default_description,
            counts=numbers,
            map_svg=map_svg,
            hub=hub,
            partners=partners,
            statuses=statuses,
            unmapped=unmapped,
            dumps=pages.dump_files(ctx),
            version=ctx.release.version,
        )

    return router


# -------------------------------------------------------------------- helpers

_SAFE = "/:@!$&'()*+,;=-._~"


def _quote_url(url: str) -> str:
    """Percent-encode what is not allowed in a URL path (non-ASCII keys), keep the rest."""
    scheme, sep, rest = url.partition("://")
    return scheme + sep + quote(rest, safe=_SAFE + "%")


def _query(request: Request, *names: str) -> str:
    kept = [(n, request.query_params[n]) for n in names if n in request.query_params]
    return ("?" + "&".join(f"{n}={quote(v, safe='')}" for n, v in kept)) if kept else ""


def _with_params(request: Request, **params: str) -> str:
    query = dict(request.query_params)
    query.update(params)
    return request.url.path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())


def _hub(ctx: AppContext, site: dict[str, Any]) -> str | None:
    """The place the landing map centres on: the catalog's spatial coverage, else site.toml's hub."""
    hubs = pages.catalog_hubs(ctx)
    if hubs:
        return hubs[0]
    hub = site.get("map", {}).get("hub")
    return ctx.base_iri + hub if hub else None


def _number(value: int | None, lang: str = "en") -> str:
    """Thousands separators as each language writes them (1,191 / 1.191)."""
    if value is None:
        return ""
    text = f"{int(value):,}"
    return text.replace(",", ".") if lang == "de" else text


def _etag(ctx: AppContext, variant: str) -> str:
    """The data's version plus the representation (format, language)."""
    return f'"{ctx.release.version[:32]}-{variant}"'


def _bind_prefixes(ctx: AppContext, graph: Graph) -> None:
    for prefix, ns in pages.PREFIXES.items():
        graph.bind(prefix, ns, override=True)
    graph.bind("tw", f"{ctx.vocabulary}ontology#", override=True)
    # One prefix per IRI family of ours (place:, partnership:, source:, …), as found in the graph.
    families = set()
    for term in graph.all_nodes():
        iri = str(term)
        if isinstance(term, URIRef) and iri.startswith(ctx.base_iri + "id/"):
            rest = iri[len(ctx.base_iri) + 3 :]
            if "/" in rest:
                families.add(rest.split("/", 1)[0])
    for family in sorted(families):
        if family.isidentifier():
            graph.bind(family, f"{ctx.base_iri}id/{family}/", override=True)


def _rdf_response(ctx: AppContext, graph: Graph, fmt: Format, headers: dict[str, str]) -> Response:
    out = Graph(bind_namespaces="none")
    for triple in graph:
        out.add(triple)
    _bind_prefixes(ctx, out)
    out = ctx.localize(out)
    try:
        if fmt.rdflib == "json-ld":
            context = {p: str(ns) for p, ns in out.namespaces() if p}
            body = out.serialize(format="json-ld", context=context, auto_compact=True)
        else:
            body = out.serialize(format=fmt.rdflib)
    except Exception as exc:  # noqa: BLE001 - e.g. an IRI RDF/XML cannot express
        return PlainTextResponse(
            f"406 Not Acceptable: cannot write this description as {fmt.media_type}: {exc}\n",
            status_code=406,
            headers={"Vary": VARY},
        )
    media = fmt.media_type + ("; charset=utf-8" if fmt.key != "jsonld" else "")
    headers = {**headers, "ETag": _etag(ctx, fmt.key)}
    return Response(
        body.encode("utf-8") if isinstance(body, str) else body, media_type=media, headers=headers
    )


def _resource_map(view: pages.ResourceView, s: Strings):  # noqa: ANN202 - Markup
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
        others = [
            svgmap.Point(
                lat=p.lat,
                lon=p.lon,
                label=p.place.text,
                href=p.place.href,
                iri=p.place.iri,
                css=f"status-{p.status_key}",
            )
            for p in view.extra.get("partnerships", [])
            if p.lat is not None and p.lon is not None
        ]
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


async def _claims(ctx: AppContext, iri: str) -> list[Claim]:
    """Claims about `iri` (`audit_routes.claims_about`); the page shows without them on failure."""
    try:
        return await claims_about(ctx, iri)
    except Exception as exc:  # noqa: BLE001 - the page still shows without claims
        log.warning("claims_about(%s) failed: %s", iri, exc)
        return []
