"""What the partners' own graphs say, for the pages: the partnership page and /audit.

The comparison is `checks.partner_graphs` (the audit's, over the snapshots that
`refresh-partners` stored and the build published); this module only runs it over the
served release, once per release, through the query engine like every page query, from a
worker thread so the event loop keeps serving. Nothing is fetched from the network at request time.
A release without partner graphs (no `{base}graph/partners`) costs no query at all.
"""

from __future__ import annotations

import asyncio
import logging

from twinning_kg.checks import partner_graphs
from twinning_kg.checks.partner_graphs import Confirmation, CrossGraph
from twinning_kg.graph.claims import SPARQL_JSON, Row, parse_results
from twinning_kg.query.engine import QueryRequest
from twinning_kg.web.context import AppContext

log = logging.getLogger(__name__)


def holds_partner_graphs(ctx: AppContext) -> bool:
    graphs = ctx.release.manifest.get("graphs") or {}
    return f"{ctx.base_iri}graph/partners" in graphs


def _sync_select(ctx: AppContext, loop: asyncio.AbstractEventLoop):  # noqa: ANN202 - a claims.Select
    def select(query: str) -> list[Row]:
        request = QueryRequest(query=query, accept=SPARQL_JSON)
        result = asyncio.run_coroutine_threadsafe(ctx.engine.execute(request), loop).result()
        return parse_results(result.body)

    return select


async def confirmation(ctx: AppContext, partnership: str) -> Confirmation | None:
    """The partner graph's word on our `partnership`; None when the release holds no partner
    graphs, or when they cannot be read (the page still shows without it)."""
    if not holds_partner_graphs(ctx):
        return None
    try:
        results = await cross_graph(ctx)
    except Exception as exc:  # noqa: BLE001 - the page still shows without it
        log.warning("partner confirmation of %s failed: %s", partnership, exc)
        return None
    return partner_graphs.confirmation_in(results, ctx.canonical(partnership))


async def cross_graph(ctx: AppContext) -> list[CrossGraph]:
    """Every partner graph's accounts of our partnerships (/audit and the partnership pages),
    compared once per release."""
    if not holds_partner_graphs(ctx):
        return []
    loop = asyncio.get_running_loop()

    async def compare() -> list[CrossGraph]:
        return await asyncio.to_thread(
            partner_graphs.cross_graph, _sync_select(ctx, loop), ctx.base_iri, ctx.vocabulary,
            ctx.settings.city_key,
        )

    return await ctx.memo_async("partner-graphs", compare)
