"""`create_app`: the FastAPI application serving one release.

Routers live in their own modules (`sparql`, `catalog_routes`, `audit_routes`, `linked_data`),
each exposing `make_router(ctx) -> APIRouter`; this module wires them with the
cross-cutting middleware.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryEngine
from twinning_kg.release.reader import Release
from twinning_kg.web import audit_routes, catalog_routes, linked_data, sparql
from twinning_kg.web.context import AppContext
from twinning_kg.web.middleware import install as install_middleware
from twinning_kg.web.security_headers import SecurityHeaders

ROUTER_MODULES = (sparql, catalog_routes, audit_routes, linked_data)  # in this order: first match wins
# Vendored assets (YASGUI, map data): served by us so no page needs a CDN.
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings, release: Release, engine: QueryEngine) -> FastAPI:
    """Build the app serving `release` through `engine` (a worker pool or a remote store)."""
    ctx = AppContext(settings=settings, release=release, engine=engine)
    app = FastAPI(title="twinning-kg", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    for module in ROUTER_MODULES:
        app.include_router(module.make_router(ctx))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_middleware(app, settings, ctx)  # log, hosts, size limit, CORS, release check, ETag, gzip
    # Security headers outside everything, Starlette's own error handler included, so a
    # 500 carries them too (add_middleware would place them inside that handler).
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build_stack())  # type: ignore[method-assign]
    return app
