"""`create_app`: the web application serving one release, and its one route table.

Every URL the server answers is listed in `_routes()` (Datasette's layout): path, view,
methods; the views live in `views/`, one module per kind of resource. Around them, the
cross-cutting middleware (`middleware.install`) and, outermost, the security headers.
Errors the router itself raises (no such route, a method a route does not have) are
answered like every other error: a page or plain text, as the client prefers.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryEngine
from twinning_kg.release.reader import Release
from twinning_kg.web.context import AppContext
from twinning_kg.web.middleware import install as install_middleware
from twinning_kg.web.responses import error
from twinning_kg.web.result_cache import ResultCache
from twinning_kg.web.security_headers import SecurityHeaders
from twinning_kg.web.sparql_lean import LeanSparql
from twinning_kg.web.static_assets import StaticAssets
from twinning_kg.web.views import audit_page, crawlers, landing, ontology, publication, resources, sparql

# Vendored assets (YASGUI, map data, stylesheet, icon): served by us so no page needs a CDN.
STATIC_DIR = Path(__file__).resolve().parent / "static"
GET = ["GET"]  # Starlette answers HEAD for every GET route


def _routes() -> list[BaseRoute]:
    """Every URL of the site, in matching order (the first match wins)."""
    endpoint = sparql.Endpoint()
    return [
        Route("/", landing.landing, methods=GET),
        Route("/favicon.ico", landing.favicon, methods=GET),
        # SPARQL 1.1 Protocol: queries, service description, YASGUI (GET, HEAD, POST, OPTIONS)
        Route("/sparql", endpoint),
        Route("/sparql/", endpoint),
        # linked data: things 303 to their documents (Cool URIs §4.3); the vocabulary
        Route("/id/{path:path}", resources.thing, methods=GET),
        Route("/doc/{path:path}", resources.document, methods=GET),
        Route("/ontology", ontology.ontology, methods=GET),
        Route("/ontology/{version}", ontology.ontology_version, methods=GET),
        # what portals and other graphs harvest, and the IRIs the catalog and VoID mint
        Route("/catalog", publication.catalog, methods=GET),
        Route("/.well-known/void", publication.void, methods=GET),
        Route("/dataset/{rest:path}", publication.described_elsewhere, methods=GET),
        Route("/distribution/{rest:path}", publication.described_elsewhere, methods=GET),
        Route("/service/{rest:path}", publication.described_elsewhere, methods=GET),
        Route("/graph/{name:path}", publication.named_graph, methods=GET),
        Route("/void", publication.described_elsewhere, methods=GET),
        Route("/void/{rest:path}", publication.described_elsewhere, methods=GET),
        Route("/about", publication.about, methods=GET),
        Route("/dumps", publication.dumps_slash, methods=GET),
        Route("/dumps/", publication.dumps_index, methods=GET),
        Route("/dumps/{name}", publication.dump, methods=GET),
        Route("/audit", audit_page.audit, methods=GET),
        # what search engines read: robots.txt, the sitemap (an index of parts when large)
        Route("/robots.txt", crawlers.robots, methods=GET),
        Route("/sitemap.xml", crawlers.sitemap, methods=GET),
        Route("/sitemap-{n:int}.xml", crawlers.sitemap_part, methods=GET),
        Mount("/static", StaticAssets(STATIC_DIR), name="static"),
    ]


async def _router_error(request: Request, exc: Exception) -> Response:
    """404 for a URL no route has, 405 for a method a route does not take (with `Allow`)."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
        return error(
            request,
            405,
            "method_not_allowed",
            "method_not_allowed_text",
            detail=request.method,
            headers=headers,
        )
    return error(request, 404, "not_found", "not_found_page_text", detail=request.url.path)


def create_app(settings: Settings, release: Release, engine: QueryEngine) -> Starlette:
    """The app serving `release` through `engine` (a worker pool or a remote store).

    Raises ValueError when `settings.base_url` and the release's base IRI cannot be one
    IRI space (one contains the other: `query.iri_space`).
    """
    ctx = AppContext(
        settings=settings, release=release, engine=engine, results=ResultCache(settings.result_cache_bytes)
    )
    ctx.iri_space  # noqa: B018 - fail now, not on the first request
    app = Starlette(routes=_routes(), exception_handlers={404: _router_error, 405: _router_error})
    app.state.ctx = ctx
    install_middleware(app, settings, ctx)  # log, hosts, size limit, CORS, release check, ETag, gzip
    # Security headers outside everything, Starlette's own error handler included, so a
    # 500 carries them too (add_middleware would place them inside that handler).
    # In front of all of it, the lean path for query GETs (`web.sparql_lean`), which keeps
    # the headers, checks and validators they need and hands anything else to the stack.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: LeanSparql(SecurityHeaders(build_stack()), ctx)  # type: ignore[method-assign]
    return app
