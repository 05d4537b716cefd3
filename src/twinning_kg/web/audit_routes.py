"""`/audit`: the audit report as a page (German/English) or JSON, and claims per resource.

All data comes through `ctx.engine` as SPARQL JSON results, from the same `graph/queries/*.rq`
the CLI uses, so the page, `twinning-kg audit --graph DIR` and the published query agree
and the page works over a remote store too.

`claims_about(ctx, iri)` serves the resource pages (twinning_kg.web.linked_data): the
claims whose subject or value is that resource, each a `graph.claims.Claim`.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from twinning_kg.checks import claims_audit
from twinning_kg.graph.claims import SPARQL_JSON, Claim, Row, about_query, group, parse_results
from twinning_kg.query.engine import QueryError, QueryRequest
from twinning_kg.query.result_formats import parse_accept
from twinning_kg.web import partner_confirmation
from twinning_kg.web.context import AppContext
from twinning_kg.web.i18n import negotiate_language

log = logging.getLogger(__name__)
# ?format= key -> media type; the first is the default for */* (browsers get the page).
FORMATS = {"html": "text/html", "json": "application/json", "text": "text/plain"}
VARY = "Accept, Accept-Language"
LANGUAGES = ("en", "de")
LIST_LIMIT = 1000  # one-way / weak-only rows shown on the page


async def _select(ctx: AppContext, query: str) -> list[Row]:
    result = await ctx.engine.execute(QueryRequest(query=query, accept=SPARQL_JSON))
    return parse_results(result.body)


def choose_format(request: Request) -> str:
    """`?format=` wins; else the best of our media types by Accept; else HTML."""
    key = request.query_params.get("format")
    if key in FORMATS:
        return key
    for media, q in parse_accept(request.headers.get("accept")):
        if q <= 0:
            continue
        if media in ("*/*", "text/*"):
            return "html"
        for name, offered in FORMATS.items():
            if media == offered or (name == "json" and media == "application/sparql-results+json"):
                return name
    return "html"


def choose_language(request: Request) -> str:
    return negotiate_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def make_router(ctx: AppContext) -> APIRouter:
    router = APIRouter()
    cache: dict[str, claims_audit.AuditReport] = {}  # release version -> report (a release never changes)

    async def report() -> claims_audit.AuditReport:
        key = f"{ctx.release.version} {ctx.base_iri}"
        if key not in cache:
            cache.clear()
            # cap the growing lists below the engine's row cap; totals come from COUNT queries
            limit = max(1, min(LIST_LIMIT, ctx.settings.max_rows))
            current = await claims_audit.build_report_async(
                lambda q: _select(ctx, q), ctx.base_iri, limit, vocabulary=ctx.vocabulary
            )
            current.cross_graph = await partner_confirmation.cross_graph(ctx)
            cache[key] = current
        return cache[key]

    @router.api_route("/audit", methods=["GET", "HEAD"])
    async def audit_page(request: Request) -> Response:
        fmt = choose_format(request)
        lang = choose_language(request)
        headers = {"Vary": VARY, "Content-Language": lang}
        try:
            current = await report()
        except QueryError as exc:
            log.warning("audit queries failed: %s", exc.message)
            return PlainTextResponse(f"audit unavailable: {exc.message}\n", status_code=503, headers=headers)
        if fmt == "json":
            return Response(claims_audit.render_json(current), media_type="application/json", headers=headers)
        if fmt == "text":
            return PlainTextResponse(claims_audit.render_text(current, lang), headers=headers)
        page = claims_audit.render_html(current, lang, public=ctx.public, site=True)
        return HTMLResponse(page, headers=headers)

    return router


async def claims_about(ctx: AppContext, iri: str) -> list[Claim]:
    """Claims whose subject or value is `iri`, for the resource pages."""
    canonical = ctx.canonical(iri)
    try:
        query = about_query(canonical, ctx.vocabulary)
    except ValueError:
        return []
    rows = await _select(ctx, query)
    return [Claim.from_rows(claim_rows) for claim_rows in group(rows, "claim").values()]
