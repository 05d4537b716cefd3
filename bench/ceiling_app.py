"""The ceiling experiment's server (`bench/ceiling.py`): HTTP and the engine in one process.

No worker processes (so no time limit), no admission, no cache, no negotiation, no access log:
only what every lookup needs at the least, the guard's plain check (`guard.plain`) and
pyoxigraph's query and JSON writer, behind uvicorn's (or Granian's) HTTP. Not a server to run:
a measure of how fast any Python server on this engine could answer the random lookups.
"""

from __future__ import annotations

import os
import urllib.parse
from typing import Any

import pyoxigraph as ox

from twinning_kg.query.guard import plain
from twinning_kg.query.syntax import Budget
from twinning_kg.web.security_headers import HEADERS

STORE = ox.Store.read_only(os.environ["CEILING_STORE"])
BASE = os.environ.get("CEILING_BASE", "https://w3id.org/twinning-kg/")
BUDGET = Budget()
JSON = b"application/sparql-results+json"


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    query = dict(urllib.parse.parse_qsl(scope["query_string"].decode())).get("query", "")
    if plain(query, BUDGET) is None:  # the experiment's queries are all plain
        body, status = b"not a plain query\n", 400
    else:
        result = STORE.query(query, base_iri=BASE, use_default_graph_as_union=True)
        body, status = result.serialize(format=ox.QueryResultsFormat.JSON), 200
    headers = [(b"content-type", JSON), (b"content-length", str(len(body)).encode()), *HEADERS]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
