"""The result cache under a realistic mix: a few queries popular, most rare (Zipf).

    .venv/bin/python bench/cache_mix.py --reuse            # world graph, about 2 minutes
    .venv/bin/python bench/cache_mix.py --reuse --sizes world synthetic-10x --serve-args "--processes 2"

The pool is the example queries of the YASGUI page that run offline (the federated one
needs the internet) plus a lookup of every place of the release; a sequence of requests
draws from it with probability ∝ 1/rank^s (`bench/workloads.py`). Both servers,
`twinning-kg serve` and `oxigraph serve-read-only` on the same data, run side by side and
are driven in turn (interleaved rounds, alternating order) by wrk at 1 and 8 connections.
Printed: throughput, p50/p99 and, for ours, the hit rate counted from the `X-Cache`
headers wrk saw. Oxigraph has no result cache: it evaluates every request. The random-city
benchmark (`bench/run.py`, lookup-random) stays the headline: it measures the engine path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import run  # noqa: E402 - beside this script
import synthetic  # noqa: E402 - beside this script
import workloads  # noqa: E402 - beside this script
from processes import free_port  # noqa: E402 - the tests' server helpers

CONCURRENCY = (1, 8)


@dataclass
class MixFigures:
    size: str
    server: str
    clients: int
    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    hit_rate: float | None
    distinct: int
    length: int


def measure(name: str, relations: Path, names: Path, args: argparse.Namespace) -> list[MixFigures]:
    release, _, _ = run.build(name, relations, names, args.reuse)
    manifest = json.loads((release / "manifest.json").read_text())
    base = manifest["base_iri"]
    location = run.OUT / f"{name}-oxigraph"
    if not (args.reuse and location.is_dir()):
        location, _ = run.oxigraph_load(release, name)
    sequence, distinct = workloads.zipf_sequence(
        base, workloads.places(release / "store", base), args.length, s=args.s
    )
    run.say(f"{name}: Zipf(s={args.s}) sequence of {len(sequence)} requests over {distinct} distinct queries")
    ours_port, ref_port = free_port(), free_port()
    servers = {
        "twinning-kg": run.Server(
            "twinning-kg",
            [
                str(run.BIN / "twinning-kg"),
                "serve",
                "--graph",
                str(release),
                "--host",
                "127.0.0.1",
                "--port",
                str(ours_port),
                "--max-rows",
                "100000",
                "--queue-wait",
                "300",
                *args.serve_args.split(),
            ],
            lambda q: f"http://127.0.0.1:{ours_port}/sparql?" + urllib.parse.urlencode({"query": q}),
            run.OUT / f"{name}-cache-twinning-kg.log",
        ),
        "oxigraph": run.Server(
            "oxigraph",
            [
                str(run.BIN / "oxigraph"),
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
            run.OUT / f"{name}-cache-oxigraph.log",
        ),
    }
    wrk = shutil.which("wrk")
    if not wrk:
        raise SystemExit("this benchmark needs wrk (apt-get install wrk)")
    figures: list[MixFigures] = []
    started: list[run.Server] = []
    try:
        for server in servers.values():
            server.start(workloads.examples(base)[0])
            started.append(server)
        for clients in CONCURRENCY:
            rounds: dict[str, list[workloads.WrkFigures]] = {n: [] for n in servers}
            for round_no in range(args.rounds):
                order = list(servers.items())
                if round_no % 2:
                    order.reverse()
                for server_name, server in order:
                    paths = workloads.targets(server.query_url, sequence)
                    root = "/".join(server.query_url("x").split("/", 3)[:3])
                    f = workloads.run_wrk(wrk, root, paths, clients, args.duration)
                    rounds[server_name].append(f)
                    rate = f"{f.cache_hits / f.requests:.1%}" if f.requests else "n/a"
                    run.say(
                        f"{name}/{server_name}/zipf/c{clients}/r{round_no + 1}: {f.throughput:.0f} req/s, "
                        f"p50 {f.p50_ms:.2f} ms, p99 {f.p99_ms:.2f} ms, errors {f.errors}, hits {rate}"
                    )
            for server_name, got in rounds.items():
                n = len(got)
                requests = sum(f.requests for f in got)
                hits = sum(f.cache_hits for f in got)
                figures.append(
                    MixFigures(
                        name,
                        server_name,
                        clients,
                        requests,
                        sum(f.throughput for f in got) / n,
                        sum(f.p50_ms for f in got) / n,
                        sum(f.p99_ms for f in got) / n,
                        sum(f.errors for f in got),
                        hits / requests if server_name == "twinning-kg" and requests else None,
                        distinct,
                        len(sequence),
                    )
                )
    finally:
        for server in started:
            server.stop()
    return figures


def table(figures: list[MixFigures]) -> str:
    lines = [
        "| size | clients | ours req/s | Oxigraph req/s | ratio | hit rate (ours) | ours p50 | Oxigraph p50 "
        "| ours p99 | Oxigraph p99 | p99 ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {(f.size, f.server, f.clients): f for f in figures}
    for size in dict.fromkeys(f.size for f in figures):
        for clients in CONCURRENCY:
            a, b = by[(size, "twinning-kg", clients)], by[(size, "oxigraph", clients)]
            lines.append(
                f"| {size} | {clients} | {a.throughput:.0f} | {b.throughput:.0f} | "
                f"{run.ratio(a.throughput, b.throughput):.2f} | {a.hit_rate:.1%} | {a.p50_ms:.2f} | "
                f"{b.p50_ms:.2f} | {a.p99_ms:.2f} | {b.p99_ms:.2f} | {run.ratio(a.p99_ms, b.p99_ms):.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the servers are stopped
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["world"], choices=["world", "synthetic-10x"])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per measurement")
    parser.add_argument("--length", type=int, default=50_000, help="requests in the Zipf sequence")
    parser.add_argument("--s", type=float, default=1.1, help="Zipf exponent")
    parser.add_argument("--reuse", action="store_true", help="reuse graphs already built in bench/out")
    parser.add_argument("--serve-args", default="", help="extra options for `twinning-kg serve`")
    args = parser.parse_args()
    run.OUT.mkdir(parents=True, exist_ok=True)
    figures: list[MixFigures] = []
    for name in args.sizes:
        if name == "world":
            figures += measure(name, run.CRAWL / "relations.tsv", run.CRAWL / "names.tsv", args)
        else:
            relations, names = synthetic.generate(run.CRAWL, run.OUT / "synthetic-10x-input", factor=10)
            figures += measure(name, relations, names, args)
    (run.OUT / "cache_mix.json").write_text(json.dumps([asdict(f) for f in figures], indent=2))
    print(" ".join([".venv/bin/python bench/cache_mix.py", *sys.argv[1:]]))
    print(table(figures))


if __name__ == "__main__":
    main()
