"""Benchmark our SPARQL server against Oxigraph's own, on the world graph and a 10x synthetic one.

    .venv/bin/python bench/run.py            # everything (about 15 minutes on 2 cores)
    .venv/bin/python bench/run.py --reuse    # keep graphs already built under bench/out/
    .venv/bin/python bench/run.py --sizes world --duration 5

For each size it: builds the graph with the real importer (`twinning-kg import
wikidata-p190 …`, the synthetic one from `bench/synthetic.py`), loads the release's
N-Quads dump into an Oxigraph location with `oxigraph load` (timed), starts
`twinning-kg serve --graph DIR` and `oxigraph serve-read-only` on that location, and
drives both with a real HTTP load generator (`wrk` when installed, else an asyncio
httpx client) at 1 and 8 concurrent connections: throughput and p50/p99 latency for
random-city lookups (a different place of the release per request, the same query
template for both servers: `bench/workloads.py`), a fixed point lookup, an aggregate, a
path query and a DESCRIBE. Both servers run side by side and every measurement runs
ours and Oxigraph's interleaved (`--rounds`, alternating the order), so both meet the
same background load of a shared machine.

    .venv/bin/python bench/run.py --reuse --queries lookup-random lookup   # the headline, minutes

Aggregate and path are also timed with pyoxigraph in-process. Cold start (process start
to the first answered query) and peak RSS (the process and its children, psutil) of each server are recorded.
The figures, the ratios against the targets of issues 4 and 13 and this command go to
`bench/RESULTS.md`; the raw numbers to `bench/out/results.json`.

Both servers answer over the union of the named graphs: ours by contract, Oxigraph with
its `union-default-graph` parameter. SHACL validation time at each size is measured too
(pyshacl-turbo, the import's engine; pyshacl, the reference, at world size).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import psutil
import pyoxigraph as ox

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import synthetic  # noqa: E402 - beside this script
import workloads  # noqa: E402 - beside this script
from processes import answers, free_port, stop, wait_ready  # noqa: E402 - the tests' server helpers

ROOT = Path(__file__).resolve().parents[1]
CRAWL = ROOT.parent / "shared" / "data" / "wikidata-p190-2016"
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
JSON = "application/sparql-results+json"
QUERY_NAMES = ("lookup-random", "lookup", "aggregate", "path", "describe")


def queries(base: str) -> dict[str, tuple[str, str]]:
    """The mix of issue 4 (name -> query, Accept), for the base IRI the release was built with
    (its manifest's `base_iri`). "Partnerships per country" needs countries, which the crawl
    does not have (P17 was not crawled): the aggregate groups partnerships by the degree of
    their places."""
    pre = f"PREFIX tw: <{base}ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
    return {
        "lookup": (
            pre + f"SELECT ?partner ?label WHERE {{ <{base}id/place/Q3955> tw:twinnedWith ?partner . "
            "?partner rdfs:label ?label } ORDER BY ?label",
            JSON,
        ),
        "aggregate": (
            pre + "SELECT ?bucket (COUNT(?p) AS ?partnerships) (COUNT(DISTINCT ?place) AS ?places) WHERE { "
            "{ SELECT ?place (COUNT(?q) AS ?degree) WHERE { ?q a tw:Partnership ; tw:partner ?place } "
            "GROUP BY ?place } "
            "?p tw:partner ?place . "
            'BIND (IF(?degree >= 50, "50+", IF(?degree >= 10, "10-49", '
            'IF(?degree >= 3, "3-9", STR(?degree)))) AS ?bucket) } GROUP BY ?bucket ORDER BY ?bucket',
            JSON,
        ),
        "path": (
            pre
            + f"SELECT DISTINCT ?place WHERE {{ <{base}id/place/kassel> "
            "tw:twinnedWith/tw:twinnedWith? ?place "
            f"FILTER (?place != <{base}id/place/kassel>) }} ORDER BY ?place",
            JSON,
        ),
        "describe": (f"DESCRIBE <{base}id/place/Q3955>", "application/n-triples"),
    }


CONCURRENCY = (1, 8)
MAX_RUN = 90.0  # seconds: the longest single measurement


# --------------------------------------------------------------------------- helpers


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Load:
    clients: int
    requests: int
    seconds: float
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    tool: str
    cache_hits: int = 0  # answers with `X-Cache: hit` (ours only; 0 on the engine path)


@dataclass
class ServerFigures:
    name: str
    cold_start_s: float
    peak_rss_mb: float = 0.0
    loads: dict[str, dict[int, Load]] = field(default_factory=dict)


@dataclass
class SizeFigures:
    name: str
    quads: int
    build_s: float
    validate_fast_s: float | None
    validate_pyshacl_s: float | None
    oxigraph_load_s: float
    servers: dict[str, ServerFigures] = field(default_factory=dict)
    inprocess_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    same_answers: dict[str, bool] = field(default_factory=dict)  # query -> both servers agree


class Server:
    """A server process; cold start = spawn to the first 200 answer; RSS sampled all along."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        query_url: Callable[[str], str],
        log: Path,
        env: dict[str, str] | None = None,
    ) -> None:
        self.name, self.argv, self.query_url, self.env = name, argv, query_url, env
        self.log = log.open("w")
        self.peak = 0
        self._stop = threading.Event()

    def start(self, ready_query: str, timeout: float = 180) -> float:
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env
        )
        self.ps = psutil.Process(self.proc.pid)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        ready = answers(self.query_url(ready_query), {"Accept": JSON}, timeout=5)
        wait_ready(self.proc, ready, timeout, interval=0.02, log=lambda: f"see {self.log.name}")
        return time.perf_counter() - started

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.ps, *self.ps.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    def stop(self) -> None:
        self._stop.set()
        stop(self.proc)
        self.log.close()


# --------------------------------------------------------------------------- load generation


def run_load(server: Server, query: str, accept: str, clients: int, seconds: float, unique: bool) -> Load:
    """Drive `server` with `query` on `clients` connections; slow queries get a longer run.

    `unique`: every request's text ends in its own numbered comment (`workloads.UNIQUE`),
    so neither server's cache can answer it and the figures are the engine path's; else
    the same text every time (our result cache answers it after the first).

    A query that takes seconds would complete no request in a short run, so one timed
    probe decides: the run lasts long enough for about five answers per client at the
    server's two-core parallelism (capped at MAX_RUN).
    """
    url = server.query_url(query)
    # the probe is numbered too: an answer our cache kept (the same-answers check asked
    # this text already) would make a slow query look fast
    probe = query + workloads.UNIQUE.replace("__N__", f"probe {time.time_ns()}") if unique else query
    started = time.perf_counter()
    httpx.get(server.query_url(probe), headers={"Accept": accept}, timeout=300)
    single = time.perf_counter() - started
    seconds = max(seconds, min(MAX_RUN, 5 * single * max(1, clients / 2) + 1))
    # A slow query is warm after the probe; a warm-up run would only leave work behind: its
    # requests still queued when wrk ends, counted against the next run's client, which our
    # admission then answers 429 (one client may have only so many queries waiting).
    warm = single < 0.05
    wrk = shutil.which("wrk")
    if wrk:
        paths = workloads.targets(server.query_url, [query + workloads.UNIQUE if unique else query])
        root = "/".join(server.query_url("x").split("/", 3)[:3])
        f = workloads.run_wrk(wrk, root, paths, clients, seconds, accept=accept, warmup=1.0 if warm else 0)
        load = Load(
            clients, f.requests, seconds, f.throughput, f.p50_ms, f.p99_ms, f.errors, "wrk+lua", f.cache_hits
        )
    else:
        load = asyncio.run(_httpx_load(url, accept, clients, seconds, warm))
    if not warm:
        # requests cut off at the end of the run may still be evaluated: let the server drain
        time.sleep(min(60.0, single * clients / 2))
    return load


def random_load(server: Server, lookups: list[str], clients: int, seconds: float) -> Load:
    """Random-city lookups: every request another place (wrk over the whole sequence)."""
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("the random-city workload needs wrk (apt-get install wrk)")
    paths = workloads.targets(server.query_url, lookups)
    root = server.query_url("x").split("/", 3)
    f = workloads.run_wrk(wrk, "/".join(root[:3]), paths, clients, seconds)
    return Load(
        clients, f.requests, seconds, f.throughput, f.p50_ms, f.p99_ms, f.errors, "wrk+lua", f.cache_hits
    )


def combine(loads: list[Load]) -> Load:
    """Rounds of one measurement: throughput, p50 and p99 averaged, requests and errors summed."""
    n = len(loads)
    return Load(
        loads[0].clients,
        sum(x.requests for x in loads),
        sum(x.seconds for x in loads),
        sum(x.throughput for x in loads) / n,
        sum(x.p50_ms for x in loads) / n,
        sum(x.p99_ms for x in loads) / n,
        sum(x.errors for x in loads),
        loads[0].tool,
        sum(x.cache_hits for x in loads),
    )


async def _httpx_load(url: str, accept: str, clients: int, seconds: float, warm: bool) -> Load:
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=clients)) as client:

        async def worker(deadline: float) -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                response = await client.get(url, headers={"Accept": accept})
                await response.aread()
                if response.status_code != 200:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        if warm:
            await asyncio.gather(*(worker(time.perf_counter() + 1) for _ in range(clients)))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(started + seconds) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return Load(
        clients,
        len(ordered),
        elapsed,
        len(ordered) / elapsed,
        ordered[len(ordered) // 2] * 1000,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        errors,
        "httpx",
    )


def answer(url: str, accept: str) -> object:
    """A server's answer in a comparable form (solutions as JSON, triples as a sorted list)."""
    response = httpx.get(url, headers={"Accept": accept}, timeout=300)
    response.raise_for_status()
    if accept == JSON:
        return response.json()["results"]["bindings"]
    return sorted(response.text.splitlines())


def inprocess(store_path: Path, query: str, seconds: float) -> dict[str, float]:
    """pyoxigraph in-process: query + JSON serialisation (what a server must do too)."""
    store = ox.Store.read_only(str(store_path))
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    store.query(query, use_default_graph_as_union=True).serialize(
        format=ox.QueryResultsFormat.JSON
    )  # warm-up
    while time.perf_counter() < deadline or len(times) < 5:
        start = time.perf_counter()
        store.query(query, use_default_graph_as_union=True).serialize(format=ox.QueryResultsFormat.JSON)
        times.append(time.perf_counter() - start)
    times.sort()
    return {
        "p50_ms": times[len(times) // 2] * 1000,
        "p99_ms": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
        "runs": len(times),
    }


# --------------------------------------------------------------------------- building


def build(name: str, relations: Path, names: Path, reuse: bool) -> tuple[Path, float, float | None]:
    """Import with the real CLI; returns (release, seconds, SHACL seconds from the summary)."""
    out = OUT / name
    log = OUT / f"{name}-import.log"
    if reuse and (out / "manifest.json").is_file() and log.is_file():
        say(f"{name}: reusing {out}")
        seconds = (
            float(m.group(1))
            if (m := re.search(r"^wall: ([\d.]+) s$", log.read_text(), re.M))
            else float("nan")
        )
        return out, seconds, _shacl_seconds(log.read_text())
    say(f"{name}: importing {relations} ...")
    started = time.perf_counter()
    proc = subprocess.run(
        [str(BIN / "twinning-kg"), "import", "wikidata-p190", str(relations), str(names), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=ROOT,
    )
    seconds = time.perf_counter() - started
    log.write_text(f"{proc.stderr}{proc.stdout}wall: {seconds:.1f} s\n")
    if proc.returncode != 0:
        raise SystemExit(f"import of {name} failed; see {log}")
    say(f"{name}: built in {seconds:.0f} s")
    return out, seconds, _shacl_seconds(proc.stderr)


def _shacl_seconds(summary: str) -> float | None:
    match = re.search(r"time: validate \(SHACL\)\s*\S*\s*([\d.]+) s", summary)
    return float(match.group(1)) if match else None


def pyshacl_seconds(release: Path) -> float:
    """The reference engine on the same union graph and shapes as the import."""
    import pyshacl
    from rdflib import Graph

    from twinning_kg.checks.validation import load_shapes
    from twinning_kg.checks.world_validation import SHACL_OPTIONS
    from twinning_kg.config import Settings

    data = Graph()
    data.parse(release / "twinning-kg.nt", format="nt")
    shapes = load_shapes(Settings())
    started = time.perf_counter()
    conforms, _, _ = pyshacl.validate(data, shacl_graph=shapes, **SHACL_OPTIONS)
    seconds = time.perf_counter() - started
    say(f"pyshacl: {seconds:.1f} s, conforms={conforms}")
    return seconds


def oxigraph_load(release: Path, name: str) -> tuple[Path, float]:
    location = OUT / f"{name}-oxigraph"
    shutil.rmtree(location, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        [
            str(BIN / "oxigraph"),
            "load",
            "--location",
            str(location),
            "--file",
            str(release / "twinning-kg.nq"),
        ],
        check=True,
        capture_output=True,
    )
    return location, time.perf_counter() - started


# --------------------------------------------------------------------------- one size


def measure_size(name: str, relations: Path, names: Path, args: argparse.Namespace) -> SizeFigures:
    release, build_s, fast_s = build(name, relations, names, args.reuse)
    manifest = json.loads((release / "manifest.json").read_text())
    pyshacl_s = (
        pyshacl_seconds(release) if (name == "world" or args.pyshacl_all) and not args.no_pyshacl else None
    )
    location, load_s = oxigraph_load(release, name)
    say(f"{name}: oxigraph load {load_s:.1f} s")
    figures = SizeFigures(name, manifest["quads"], build_s, fast_s, pyshacl_s, load_s)
    mix = queries(manifest["base_iri"])

    ours_port, ref_port = free_port(), free_port()
    candidates = {
        "twinning-kg": Server(
            "twinning-kg",
            [
                str(BIN / "twinning-kg"),
                "serve",
                "--graph",
                str(release),
                "--host",
                "127.0.0.1",
                "--port",
                str(ours_port),
                "--max-rows",
                "100000",
                # The load generator is one client: it runs --client-queries at once and the
                # rest queue. A long queue wait keeps them queued instead of answering 429 after
                # 1 s, so the figures are the server's capacity, not the per-client limit.
                "--queue-wait",
                "300",
                *args.serve_args.split(),
            ],
            lambda q: f"http://127.0.0.1:{ours_port}/sparql?" + urllib.parse.urlencode({"query": q}),
            OUT / f"{name}-twinning-kg.log",
            # another version of our code (e.g. `git archive` of an older commit) for before/after
            {**os.environ, "PYTHONPATH": str(Path(args.ours_src).resolve())} if args.ours_src else None,
        ),
        "oxigraph": Server(
            "oxigraph",
            [
                str(BIN / "oxigraph"),
                "serve-read-only",
                "--location",
                str(location),
                "--bind",
                f"127.0.0.1:{ref_port}",
            ],
            lambda q: (
                f"http://127.0.0.1:{ref_port}/query?"
                + urllib.parse.urlencode({"query": q})
                + "&union-default-graph"
            ),
            OUT / f"{name}-oxigraph.log",
        ),
    }
    measured = [q for q in QUERY_NAMES if q in args.queries]
    replies: dict[str, dict[str, object]] = {}
    started: list[Server] = []
    try:
        for server_name, server in candidates.items():
            cold = server.start(mix["lookup"][0])
            started.append(server)
            say(f"{name}/{server_name}: cold start {cold:.2f} s")
            figures.servers[server_name] = ServerFigures(server_name, cold)
            replies[server_name] = {
                q: answer(server.query_url(text), accept)
                for q, (text, accept) in mix.items()
                if q in measured
            }
        lookups = workloads.lookup_sequence(
            manifest["base_iri"], workloads.places(release / "store", manifest["base_iri"]), args.places
        )
        say(f"{name}: random-city lookups over {len(lookups)} places")
        replies_random = {
            n: answer(s.query_url(lookups[0]), JSON) for n, s in candidates.items()
        }
        # Interleaved: each measurement runs ours, then Oxigraph (the other way round in
        # the next round), so both meet the same background load of the shared machine.
        for query_name in measured:
            for clients in CONCURRENCY:
                rounds: dict[str, list[Load]] = {n: [] for n in candidates}
                for round_no in range(args.rounds):
                    order = list(candidates.items())
                    if round_no % 2:
                        order.reverse()
                    for server_name, server in order:
                        if query_name == "lookup-random":
                            load = random_load(server, lookups, clients, args.duration)
                        else:
                            query, accept = mix[query_name]
                            unique = query_name != "lookup"  # the fixed lookup: our cache answers
                            load = run_load(server, query, accept, clients, args.duration, unique)
                        rounds[server_name].append(load)
                        say(
                            f"{name}/{server_name}/{query_name}/c{clients}/r{round_no + 1}: "
                            f"{load.throughput:.1f} req/s, p50 {load.p50_ms:.2f} ms, "
                            f"p99 {load.p99_ms:.2f} ms, errors {load.errors}, "
                            f"cache hits {load.cache_hits}/{load.requests}"
                        )
                for server_name, loads in rounds.items():
                    figures.servers[server_name].loads.setdefault(query_name, {})[clients] = combine(loads)
    finally:
        for server in started:
            server.stop()
    for server_name, server in candidates.items():
        figures.servers[server_name].peak_rss_mb = server.peak / 2**20
    if "lookup-random" in measured:
        replies = {n: {**r, "lookup-random": replies_random[n]} for n, r in replies.items()}
    figures.same_answers = {q: replies["twinning-kg"][q] == replies["oxigraph"][q] for q in measured}
    say(f"{name}: same answers from both servers: {figures.same_answers}")
    for query_name in [q for q in ("aggregate", "path") if q in measured]:
        figures.inprocess_ms[query_name] = inprocess(release / "store", mix[query_name][0], args.duration)
        p50 = figures.inprocess_ms[query_name]["p50_ms"]
        say(f"{name}/pyoxigraph in-process/{query_name}: p50 {p50:.2f} ms")
    return figures


# --------------------------------------------------------------------------- report


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def report(sizes: list[SizeFigures], command: str, environment: dict[str, str]) -> str:
    lines = [
        "# Benchmark: twinning-kg's SPARQL server vs. Oxigraph's",
        "",
        f"Command: `{command}` (written by `bench/run.py`; raw figures in `bench/out/results.json`).",
        "",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in environment.items()) + ".",
        "",
        "Queries (both servers see the union of the named graphs): **lookup-random** = a place's partners "
        "with labels, a different place of the release per request (the engine path: no cache can help; "
        "the headline); **lookup** = the same for Weimar every time (the one query repeated "
        "verbatim: after the first request our result cache answers it, `X-Cache: hit`); "
        "**aggregate** = partnerships and places per degree bucket of the places (the crawl has no "
        "countries, so the aggregate groups by what the graph has); **path** = places within two "
        "`tw:twinnedWith` hops "
        "of Kassel; **describe** = `DESCRIBE` Weimar. Every query but **lookup** ends in a comment "
        "numbered per request, so no cache of either server answers it: the engine path. Ours and "
        "Oxigraph ran side by side, measured in turn (interleaved rounds, alternating order); "
        "figures are the means of the rounds. Latency in ms; throughput in requests/s.",
        "",
    ]
    for size in sizes:
        ours, ref = size.servers["twinning-kg"], size.servers["oxigraph"]
        lines += [
            f"## {size.name} ({size.quads:,} quads)",
            "",
            "Both servers gave the same answers: "
            + ", ".join(f"{q} {'yes' if ok else '**NO**'}" for q, ok in size.same_answers.items())
            + ". "
            f"Import (read, reconcile, SHACL, dumps, store): {size.build_s:.0f} s. "
            f"SHACL verdict with pyshacl-turbo: {_fmt_s(size.validate_fast_s)}"
            + (
                f"; pyshacl (reference) on the same graph: {_fmt_s(size.validate_pyshacl_s)}."
                if size.validate_pyshacl_s
                else "."
            ),
            "",
            "| query | clients | ours req/s | Oxigraph req/s | ratio | ours p50 | Oxigraph p50 | ours p99 "
            "| Oxigraph p99 | p99 ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for query in [q for q in QUERY_NAMES if q in ours.loads]:
            for clients in CONCURRENCY:
                a, b = ours.loads[query][clients], ref.loads[query][clients]
                lines.append(
                    f"| {query} | {clients} | {a.throughput:.1f} | {b.throughput:.1f} | "
                    f"{ratio(a.throughput, b.throughput):.2f} | {a.p50_ms:.2f} | {b.p50_ms:.2f} | "
                    f"{a.p99_ms:.2f} | {b.p99_ms:.2f} | {ratio(a.p99_ms, b.p99_ms):.2f} |"
                )
        lines += [
            "",
            "| | ours | Oxigraph |",
            "|---|---:|---:|",
            f"| cold start (process start to first answer) | {ours.cold_start_s:.2f} s "
            f"| {ref.cold_start_s:.2f} s |",
            f"| `oxigraph load` of the N-Quads dump | | {size.oxigraph_load_s:.2f} s |",
            f"| peak RSS (process and children) | {ours.peak_rss_mb:.0f} MB | {ref.peak_rss_mb:.0f} MB |",
            "",
        ]
        lines += ["Targets (issue 13, random-city lookups):", "", "| target | measured | |", "|---|---|---|"]
        headline = "lookup-random" if "lookup-random" in ours.loads else "lookup"
        for clients in CONCURRENCY if headline in ours.loads else ():
            a, b = ours.loads[headline][clients], ref.loads[headline][clients]
            through = ratio(a.throughput, b.throughput)
            lines.append(
                f"| lookup throughput ≥ 0.5 × Oxigraph ({clients} client{'s' if clients > 1 else ''}) "
                f"| {through:.2f} × | {verdict(through >= 0.5)} |"
            )
            p99 = ratio(a.p99_ms, b.p99_ms)
            lines.append(
                f"| lookup p99 ≤ 2 × Oxigraph's ({clients} client{'s' if clients > 1 else ''}) "
                f"| {p99:.2f} × | {verdict(p99 <= 2)} |"
            )
        for query in [q for q in ("aggregate", "path") if q in size.inprocess_ms]:
            a = ours.loads[query][1].p50_ms
            base = size.inprocess_ms[query]["p50_ms"]
            lines.append(
                f"| {query} latency ≤ 1.5 × pyoxigraph in-process (p50, 1 client: {a:.2f} ms vs "
                f"{base:.2f} ms) | {ratio(a, base):.2f} × | {verdict(ratio(a, base) <= 1.5)} |"
            )
        start = ratio(ours.cold_start_s, size.oxigraph_load_s)
        lines.append(
            f"| start-up ≤ 2 × `oxigraph load` ({ours.cold_start_s:.2f} s vs {size.oxigraph_load_s:.2f} s) "
            f"| {start:.2f} × | {verdict(start <= 2)} |"
        )
        lines.append("")
    return "\n".join(lines)


def _fmt_s(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.1f} s"


def main() -> None:
    # SIGTERM ends the run like Ctrl-C: the `finally` blocks stop every server started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description="Benchmark twinning-kg serve against oxigraph serve-read-only."
    )
    parser.add_argument(
        "--sizes", nargs="+", default=["world", "synthetic-10x"], choices=["world", "synthetic-10x"]
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--reuse", action="store_true", help="reuse graphs already built in bench/out")
    parser.add_argument("--no-pyshacl", action="store_true", help="skip the pyshacl reference timing")
    parser.add_argument("--pyshacl-all", action="store_true", help="time pyshacl at every size (slow)")
    parser.add_argument("--no-report", action="store_true", help="do not rewrite bench/RESULTS.md")
    parser.add_argument(
        "--queries", nargs="+", default=list(QUERY_NAMES), choices=QUERY_NAMES, help="queries to measure"
    )
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per measurement")
    parser.add_argument("--places", type=int, default=20000, help="places in the random-city sequence")
    parser.add_argument(
        "--ours-src", default=None, help="serve our code from this src/ directory instead (before/after)"
    )
    parser.add_argument(
        "--serve-args", default="", help="extra options for `twinning-kg serve`, e.g. '--processes 2'"
    )
    args = parser.parse_args()
    if not CRAWL.is_dir():
        raise SystemExit(f"{CRAWL} is missing (../shared must sit beside the project)")
    OUT.mkdir(parents=True, exist_ok=True)
    environment = {
        "CPU": _cpu(),
        "cores": str(os.cpu_count()),
        "RAM": f"{psutil.virtual_memory().total / 2**30:.0f} GB",
        "Python": platform.python_version(),
        "pyoxigraph/oxigraph": ox.__version__,
        "load generator": "wrk (1 thread)" if shutil.which("wrk") else "asyncio httpx client",
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "date": dt.date.today().isoformat(),
    }
    sizes: list[SizeFigures] = []
    for name in args.sizes:
        if name == "world":
            sizes.append(measure_size(name, CRAWL / "relations.tsv", CRAWL / "names.tsv", args))
        else:
            relations, names = synthetic.generate(CRAWL, OUT / "synthetic-10x-input", factor=10)
            sizes.append(measure_size(name, relations, names, args))
    (OUT / "results.json").write_text(json.dumps([asdict(s) for s in sizes], indent=2, default=str))
    text = report(sizes, " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]]), environment)
    print(text)
    if not args.no_report:
        notes = _notes()
        RESULTS.write_text(text + ("\n" + notes if notes else ""))
        say(f"wrote {RESULTS}")


def _notes() -> str:
    """Hand-written analysis kept across runs: everything from '## Analysis' on in RESULTS.md."""
    if not RESULTS.is_file():
        return ""
    text = RESULTS.read_text()
    index = text.find("## Analysis")
    return text[index:] if index >= 0 else ""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
