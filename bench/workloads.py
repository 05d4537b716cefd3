"""Request sequences for wrk: random-city lookups (the engine path) and a Zipf mix (the cache).

Both servers get the same sequence of query texts; only the endpoint URL differs (ours:
`/sparql?query=…`, Oxigraph's: `/query?query=…&union-default-graph`). wrk cycles through
the sequence from a random offset per connection, so every request asks about another
place and no cache can help (`lookup_sequence`), or follows a Zipf law over lookups and
the example queries, so a few are popular (`zipf_sequence`). The Lua script also counts
`X-Cache: hit` answers, so the cache's hit rate is measured, not estimated.
"""

from __future__ import annotations

import math
import random
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyoxigraph as ox

JSON = "application/sparql-results+json"
EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "twinning_kg" / "web" / "queries"
DEFAULT_BASE = "https://w3id.org/twinning-kg/"


def lookup(base: str, place: str) -> str:
    """The lookup template: a place's partners with their labels (the same for both servers)."""
    return (
        f"PREFIX tw: <{base}ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
        f"SELECT ?partner ?label WHERE {{ <{place}> tw:twinnedWith ?partner . "
        "?partner rdfs:label ?label } ORDER BY ?label"
    )


def places(store: Path, base: str) -> list[str]:
    """Every place of the release that has a partner, in a stable order."""
    found = ox.Store.read_only(str(store)).query(
        f"SELECT DISTINCT ?p {{ GRAPH ?g {{ ?p <{base}ontology#twinnedWith> ?o }} }}"
    )
    return sorted(row["p"].value for row in found)


UNIQUE = "\n# request __N__"  # wrk puts the request's number here


def lookup_sequence(base: str, all_places: list[str], count: int, seed: int = 13) -> list[str]:
    """`count` lookups of distinct places drawn at random (all of them when there are fewer).

    Each ends in a comment that wrk numbers per request, so a text never repeats even when
    the run outlasts the places: no cache of either server (ours keeps results and guard
    verdicts by query text) can answer, every request takes the engine path.
    """
    rng = random.Random(seed)
    chosen = rng.sample(all_places, min(count, len(all_places)))
    return [lookup(base, p) + UNIQUE for p in chosen]


def examples(base: str) -> list[str]:
    """The YASGUI example queries that run offline (the federated one needs the internet)."""
    texts = []
    for path in sorted(EXAMPLES.glob("*.rq")):
        text = path.read_text(encoding="utf-8").replace(DEFAULT_BASE, base)
        if "SERVICE" not in text:
            texts.append(text)
    return texts


def zipf_sequence(
    base: str, all_places: list[str], length: int, s: float = 1.1, seed: int = 17
) -> tuple[list[str], int]:
    """`length` requests over the example queries and lookups of every place, ranked at random,
    request i picking rank k with probability ∝ 1/k^s. Returns (sequence, distinct queries)."""
    rng = random.Random(seed)
    pool = examples(base) + [lookup(base, p) for p in all_places]
    rng.shuffle(pool)
    weights = [1 / (k**s) for k in range(1, len(pool) + 1)]
    sequence = rng.choices(pool, weights=weights, k=length)
    return sequence, len(set(sequence))


@dataclass
class WrkFigures:
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    cache_hits: int


LUA = r"""
local queries = dofile("%(paths)s")
local threads = {}
local i = 0
hits = 0
setup = function(thread) table.insert(threads, thread) end
init = function(args) i = math.random(#queries) end
local n = %(salt)d  -- distinct per run: texts never repeat across runs either
request = function()
  i = i %% #queries + 1
  n = n + 1
  local path = string.gsub(queries[i], "__N__", tostring(n), 1)
  return wrk.format("GET", path, {["Accept"] = "%(accept)s"})
end
response = function(status, headers, body)
  if headers["X-Cache"] == "hit" or headers["x-cache"] == "hit" then hits = hits + 1 end
end
done = function(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("hits") end
  io.write(string.format("cache-hits: %%d\n", total))
end
"""


def _lua_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(
    wrk: str,
    root: str,
    paths: list[str],
    clients: int,
    seconds: float,
    accept: str = JSON,
    warmup: float = 1.0,
) -> WrkFigures:
    """Drive `root` (scheme://host:port) with wrk over `paths` (request targets), one thread."""
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "paths.lua"
        table.write_text("return {\n" + ",\n".join(_lua_string(p) for p in paths) + "\n}\n")
        script = Path(tmp) / "script.lua"

        def wrk_run(extra: list[str]) -> str:
            # a fresh numbering for every run (the warm-up's texts must not come back);
            # LuaJIT numbers are doubles: keep the counter well inside their 14 printed digits
            salt = (time.time_ns() // 1_000_000) % 10**8 * 10**4
            script.write_text(LUA % {"paths": table, "accept": accept, "salt": salt})
            argv = [wrk, "-t1", f"-c{clients}", "--timeout", "30s", "-s", str(script), *extra, root]
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

        if warmup > 0:
            wrk_run([f"-d{warmup:g}s"])
            time.sleep(0.01)  # the next salt is another millisecond's
        out = wrk_run([f"-d{math.ceil(seconds)}s", "--latency"])
    return parse_wrk(out, seconds)


def parse_wrk(text: str, seconds: float) -> WrkFigures:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(m.group(1)) if (m := re.search(r"(\d+) requests in", text)) else 0
    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    rate = float(m.group(1)) if (m := re.search(r"Requests/sec:\s+([\d.]+)", text)) else 0.0
    hits = int(m.group(1)) if (m := re.search(r"cache-hits: (\d+)", text)) else 0
    return WrkFigures(requests, seconds, rate, latency("50"), latency("99"), errors, hits)


def targets(url_of: Callable[[str], str], queries: list[str]) -> list[str]:
    """Request targets (path and query string) for `queries` at an endpoint."""
    out = []
    for query in queries:
        url = url_of(query)
        out.append(url[url.index("/", url.index("//") + 2) :])
    return out
