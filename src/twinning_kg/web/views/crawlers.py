"""What search-engine crawlers read first: `/robots.txt` and the sitemap.

- `/robots.txt` (RFC 9309) lets crawlers read every page but keeps them off `/sparql`,
  whose URLs are as many as there are queries and each of which costs the engine time;
  it names the sitemap by its absolute URL (sitemaps.org §"Informing search engine
  crawlers"), which is what a crawler that was told nothing else finds.
- `/sitemap.xml` (sitemaps.org protocol 0.9) lists the landing page, the ontology, the
  catalog, the VoID description, the audit, the contact page and the document `/doc/…`
  of every resource the release holds (every IRI under `{base}id/` that is the subject
  of a triple: exactly those whose document answers 200), read through the engine, with
  the release's date as `lastmod`. Locations are absolute URLs under the public base
  (`--base-url` when set, else the base IRI), as the catalog's. A sitemap may hold at
  most 50,000 URLs and 50 MB: beyond that `/sitemap.xml` becomes a sitemap index of
  `/sitemap-{n}.xml` files, each within both limits (a world-scale release).

Each has one representation, so neither is negotiated (RFC 9110 §12.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit
from xml.etree import ElementTree

from rdflib import URIRef
from rdflib.namespace import DCTERMS
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from twinning_kg.release.catalog_parts import CATALOG
from twinning_kg.web import site_queries
from twinning_kg.web.context import AppContext, context
from twinning_kg.web.responses import engine_failed, not_found
from twinning_kg.web.views.resources import doc_url

NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
MAX_URLS = 50_000  # per sitemap file (sitemaps.org protocol 0.9)
MAX_BYTES = 50 * 1024 * 1024  # per sitemap file, uncompressed
XML = "application/xml"
# The site's own pages a crawler should know, relative to the public base ("" is the landing page).
PAGES = ("", "ontology", "catalog", ".well-known/void", "audit", "about")


@dataclass(frozen=True)
class Sitemap:
    """The release's sitemap: one urlset, or an index of several (`parts`)."""

    lastmod: str | None
    parts: list[list[str]]

    @property
    def is_index(self) -> bool:
        return len(self.parts) > 1


async def robots(request: Request) -> Response:
    ctx = context(request)
    base = ctx.settings.base_url
    prefix = urlsplit(base).path.rstrip("/") if base else ""
    body = (
        "# Crawlers are welcome on every page; the SPARQL endpoint is for queries, not crawling.\n"
        "User-agent: *\n"
        f"Disallow: {prefix}/sparql\n"
        "\n"
        f"Sitemap: {ctx.public_base}sitemap.xml\n"
    )
    return PlainTextResponse(body, headers={"Cache-Control": "public, max-age=3600"})


async def sitemap(request: Request) -> Response:
    """`/sitemap.xml`: the urlset, or the index of the parts when there is more than one."""
    ctx = context(request)
    try:
        current = await site_map(ctx)
    except Exception as exc:  # noqa: BLE001 - any engine failure is a 503
        return engine_failed(request, exc)
    if current.is_index:
        locations = [f"{ctx.public_base}sitemap-{n}.xml" for n in range(1, len(current.parts) + 1)]
        return _xml(index_xml(locations, current.lastmod))
    return _xml(urlset_xml(current.parts[0], current.lastmod))


async def sitemap_part(request: Request) -> Response:
    """`/sitemap-{n}.xml`: part n of an index (404 when the sitemap is a single file)."""
    ctx = context(request)
    n = request.path_params["n"]
    try:
        current = await site_map(ctx)
    except Exception as exc:  # noqa: BLE001
        return engine_failed(request, exc)
    if not current.is_index or not 1 <= n <= len(current.parts):
        return not_found(request, request.url.path)
    return _xml(urlset_xml(current.parts[n - 1], current.lastmod))


def _xml(body: bytes) -> Response:
    return Response(body, media_type=XML, headers={"Cache-Control": "public, max-age=3600"})


# ------------------------------------------------------------------ building


async def site_map(ctx: AppContext) -> Sitemap:
    """Every URL of the release's pages, split within the limits; once per release."""

    async def build() -> Sitemap:
        urls = [ctx.public_base + page for page in PAGES]
        urls += [doc_url(ctx, iri[len(ctx.base_iri + "id/") :]) for iri in await resources(ctx)]
        return Sitemap(lastmod=release_date(ctx), parts=split(urls, MAX_URLS, MAX_BYTES))

    return await ctx.memo_async("sitemap", build)


async def resources(ctx: AppContext) -> list[str]:
    """Every IRI under `{base}id/` the store holds as a subject, i.e. every resource whose
    `/doc/` page answers, sorted; IRIs with a fragment are parts of another resource's
    document.

    One query whose one row joins the IRIs with spaces (which no IRI holds): a list of
    them as rows would pass the engine's row cap at world scale, and paging it with ORDER
    BY sorts the whole list again for every page (110 s against 2 s for the 28,000
    resources of the world import, measured). DISTINCT comes before the filter, so the
    filter runs once per subject rather than once per triple.
    """
    prefix = ctx.base_iri + "id/"
    rows = await site_queries.select(
        ctx,
        f"""SELECT (GROUP_CONCAT(STR(?s); SEPARATOR=" ") AS ?all) WHERE {{
  {{ SELECT DISTINCT ?s WHERE {{ ?s ?p ?o }} }}
  FILTER(isIRI(?s) && STRSTARTS(STR(?s), {_string(prefix)}) && !CONTAINS(STR(?s), "#"))
}}""",
    )
    joined = str(rows[0]["all"]) if rows and "all" in rows[0] else ""
    return sorted(iri for iri in joined.split(" ") if len(iri) > len(prefix))


def _string(value: str) -> str:
    """A SPARQL string literal of `value` (the base IRI: no quote or backslash in it)."""
    site_queries.iri_ref(value)  # refuses what could break out of the literal too
    return f'"{value}"'


def release_date(ctx: AppContext) -> str | None:
    """The release's date as the catalog states it (`dct:modified`), W3C Datetime."""
    modified = site_queries.catalog_graph(ctx).value(URIRef(ctx.base_iri + CATALOG), DCTERMS.modified)
    return str(modified) if modified is not None else None


def split(urls: list[str], max_urls: int, max_bytes: int) -> list[list[str]]:
    """`urls` in order, in parts of at most `max_urls` whose urlset stays under `max_bytes`."""
    overhead = 200  # XML declaration, root element, lastmod of a part
    parts: list[list[str]] = [[]]
    size = overhead
    for url in urls:
        entry = len(_escape(url).encode()) + 80  # <url><loc>…</loc><lastmod>…</lastmod></url>
        if parts[-1] and (len(parts[-1]) >= max_urls or size + entry > max_bytes):
            parts.append([])
            size = overhead
        parts[-1].append(url)
        size += entry
    return parts


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")


def urlset_xml(urls: list[str], lastmod: str | None) -> bytes:
    root = ElementTree.Element("urlset", xmlns=NS)
    for url in urls:
        entry = ElementTree.SubElement(root, "url")
        ElementTree.SubElement(entry, "loc").text = url
        if lastmod:
            ElementTree.SubElement(entry, "lastmod").text = lastmod
    return ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)


def index_xml(locations: list[str], lastmod: str | None) -> bytes:
    root = ElementTree.Element("sitemapindex", xmlns=NS)
    for location in locations:
        entry = ElementTree.SubElement(root, "sitemap")
        ElementTree.SubElement(entry, "loc").text = location
        if lastmod:
            ElementTree.SubElement(entry, "lastmod").text = lastmod
    return ElementTree.tostring(root, encoding="UTF-8", xml_declaration=True)
