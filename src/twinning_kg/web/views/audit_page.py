"""`/audit`: the audit report as JSON, a page of the site (German/English) or plain text;
and the claims about one resource, for its page.

All data comes through the query engine as SPARQL JSON results, from the same
`graph/queries/*.rq` the CLI uses, so the page, `twinning-kg audit --graph DIR` and the
published query agree, and the page works over a remote store too. Negotiated like every
resource (docs/web.md): the data (JSON) first, then the page, then plain text.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

from twinning_kg.checks import claims_audit
from twinning_kg.graph.claims import SPARQL_JSON, Claim, Row, about_query, group, parse_results
from twinning_kg.query.engine import QueryError, QueryRequest
from twinning_kg.query.negotiation import NegotiationError, Offer
from twinning_kg.web import partner_confirmation
from twinning_kg.web.audit_report import render_html, render_text
from twinning_kg.web.context import AppContext, context
from twinning_kg.web.rendering import language, other_language, with_params
from twinning_kg.web.responses import HTML, VARY, engine_failed, negotiate, negotiation_failed

log = logging.getLogger(__name__)
JSON = Offer("application/json", "json", also=("application/sparql-results+json",))
TEXT = Offer("text/plain", "text")
OFFERS = (JSON, HTML, TEXT)
LIST_LIMIT = 1000  # one-way / weak-only rows shown on the page


async def _select(ctx: AppContext, query: str) -> list[Row]:
    result = await ctx.engine.execute(QueryRequest(query=query, accept=SPARQL_JSON))
    return parse_results(result.body)


async def report(ctx: AppContext) -> claims_audit.AuditReport:
    """The audit of the served release, computed once per release."""
    # cap the growing lists below the engine's row cap; totals come from COUNT queries
    limit = max(1, min(LIST_LIMIT, ctx.settings.max_rows))

    async def compute() -> claims_audit.AuditReport:
        current = await claims_audit.build_report_async(
            lambda q: _select(ctx, q), ctx.base_iri, limit, vocabulary=ctx.vocabulary
        )
        current.cross_graph = await partner_confirmation.cross_graph(ctx)
        return current

    return await ctx.memo_async("audit", compute)


async def audit(request: Request) -> Response:
    ctx = context(request)
    try:
        offer = negotiate(request, OFFERS)
    except NegotiationError as exc:
        return negotiation_failed(request, exc)
    lang = language(request)
    try:
        current = await report(ctx)
    except QueryError as exc:
        return engine_failed(request, exc)
    headers = {"Vary": VARY, "Content-Language": lang}
    if offer is JSON:
        return Response(claims_audit.render_json(current), media_type="application/json", headers=headers)
    if offer is TEXT:
        return PlainTextResponse(render_text(current, lang), headers=headers)
    html = render_html(
        current,
        lang,
        public=ctx.public,
        standalone=False,
        path=request.url.path,
        other_lang_href=with_params(request, lang=other_language(lang)),
    )
    return HTMLResponse(html, headers=headers)


async def claims_about(ctx: AppContext, iri: str) -> list[Claim]:
    """Claims whose subject or value is `iri`, for the resource pages."""
    try:
        query = about_query(ctx.canonical(iri), ctx.vocabulary)
    except ValueError:
        return []
    rows = await _select(ctx, query)
    return [Claim.from_rows(claim_rows) for claim_rows in group(rows, "claim").values()]
