"""Point lookups through the query engine in-process (no HTTP): the worker messages and the
framed reply transport, a different place per query (so no cache of ours helps).

    .venv/bin/python bench/engine_lookups.py DIR [--lookups 2000]

DIR is a release (`twinning-kg build --out DIR`); its places with partners are queried in
turn, under the base IRI of its manifest. One worker, no federation. Prints lookups/s,
p50 and p99 in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import pyoxigraph as ox

from twinning_kg.config import Settings
from twinning_kg.query.engine import QueryRequest
from twinning_kg.query.worker_pool import WorkerPoolEngine
from twinning_kg.release.reader import Release

JSON = "application/sparql-results+json"


def lookup(base: str, place: str, n: int) -> str:
    return (
        f"PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> SELECT ?partner ?label WHERE "
        f"{{ <{place}> <{base}ontology#twinnedWith> ?partner . ?partner rdfs:label ?label }} "
        f"ORDER BY ?label # {n}"  # a different text each time: the guard's cache does not help
    )


async def measure(engine: WorkerPoolEngine, base: str, places: list[str], count: int) -> list[float]:
    for n in range(200):  # warm-up
        await engine.execute(QueryRequest(lookup(base, places[n % len(places)], n), accept=JSON))
    latencies = []
    for n in range(count):
        started = time.perf_counter()
        await engine.execute(QueryRequest(lookup(base, places[n % len(places)], n), accept=JSON))
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("release")
    parser.add_argument("--lookups", type=int, default=2000)
    args = parser.parse_args()
    release = Release.open(args.release)
    base = release.base_iri
    store = ox.Store.read_only(str(release.store_path))
    found = store.query(f"SELECT DISTINCT ?p {{ GRAPH ?g {{ ?p <{base}ontology#twinnedWith> ?o }} }}")
    places = [row["p"].value for row in found]
    del store
    settings = Settings(base_iri=base, workers=1, site_workers=0, service_allowlist=())
    engine = WorkerPoolEngine(release.store_path, settings)
    try:
        started = time.perf_counter()
        latencies = sorted(asyncio.run(measure(engine, base, places, args.lookups)))
        elapsed = time.perf_counter() - started
    finally:
        engine.shutdown()
    count = len(latencies)
    print(
        f"{count} lookups over {len(places)} places: {count / sum(latencies):.0f}/s "
        f"(wall {elapsed:.1f} s with warm-up), p50 {latencies[count // 2] * 1000:.2f} ms, "
        f"p99 {latencies[int(count * 0.99)] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
