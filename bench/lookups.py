"""Point lookups against a running server, a different place per request (the engine path:
no cache of ours helps), to compare two versions of the query path.

    .venv/bin/python bench/lookups.py http://127.0.0.1:8000/sparql --clients 1 --seconds 8

Places are the QIDs of the Wikidata P190 crawl, so serve the world release
(`twinning-kg import wikidata-p190 …`). Uses wrk with a generated Lua script when wrk is
installed (1 thread), else a sequential httpx loop. Prints requests/s, p50 and p99 in ms.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx

CRAWL = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikidata-p190-2016" / "relations.tsv"
BASE = "https://w3id.org/twinning-kg/"


def lookup(qid: str) -> str:
    return (
        f"PREFIX tw: <{BASE}ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
        f"SELECT ?partner ?label WHERE {{ <{BASE}id/place/{qid}> tw:twinnedWith ?partner . "
        "?partner rdfs:label ?label } ORDER BY ?label"
    )


def places(count: int) -> list[str]:
    seen: dict[str, None] = {}
    with CRAWL.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            for cell in row:
                if re.fullmatch(r"Q\d+", cell):
                    seen[cell] = None
            if len(seen) >= count:
                break
    return list(seen)


def with_wrk(wrk: str, url: str, qids: list[str], clients: int, seconds: float) -> str:
    endpoint = urllib.parse.urlsplit(url)
    paths = [f"{endpoint.path}?query={urllib.parse.quote(lookup(q), safe='')}" for q in qids]
    script = "paths = {\n" + ",\n".join(f'"{p}"' for p in paths) + "\n}\n"
    script += (
        "i = 0\nrequest = function()\n  i = i % #paths + 1\n"
        '  return wrk.format("GET", paths[i], {["Accept"] = "application/sparql-results+json"})\nend\n'
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    root = f"{endpoint.scheme}://{endpoint.netloc}"
    subprocess.run([wrk, "-t1", f"-c{clients}", "-d2s", "-s", handle.name, root], capture_output=True)
    out = subprocess.run(
        [wrk, "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", handle.name, root],
        capture_output=True,
        text=True,
    ).stdout
    Path(handle.name).unlink()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"50%\s+([\d.]+)(\w+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def ms(match: re.Match[str] | None) -> str:
        if not match:
            return "?"
        value, unit = float(match.group(1)), match.group(2)
        return f"{value * {'us': 0.001, 'ms': 1.0, 's': 1000.0}[unit]:.2f}"

    return (
        f"clients={clients} req/s={rate.group(1) if rate else '?'} p50={ms(p50)}ms p99={ms(p99)}ms "
        f"non-2xx={bad.group(1) if bad else 0}"
    )


def with_httpx(url: str, qids: list[str], seconds: float) -> str:
    latencies = []
    deadline = time.monotonic() + seconds
    with httpx.Client(timeout=30) as client:
        i = 0
        while time.monotonic() < deadline:
            began = time.perf_counter()
            client.get(url, params={"query": lookup(qids[i % len(qids)])})
            latencies.append(time.perf_counter() - began)
            i += 1
    latencies.sort()
    return (
        f"clients=1 req/s={len(latencies) / seconds:.0f} p50={statistics.median(latencies) * 1000:.2f}ms "
        f"p99={latencies[int(len(latencies) * 0.99)] * 1000:.2f}ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--places", type=int, default=5000)
    args = parser.parse_args()
    qids = places(args.places)
    wrk = shutil.which("wrk")
    if wrk:
        print(with_wrk(wrk, args.url, qids, args.clients, args.seconds))
    else:
        print(with_httpx(args.url, qids, args.seconds))


if __name__ == "__main__":
    main()
