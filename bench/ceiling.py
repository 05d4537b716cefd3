"""How fast could a Python server on pyoxigraph answer random lookups at all? The ceiling.

    .venv/bin/python bench/ceiling.py                       # uvicorn, two processes
    .venv/bin/python bench/ceiling.py --server granian      # needs granian importable

Serves the world release's store with `bench/ceiling_app.py` (HTTP, the guard's plain check,
pyoxigraph's query and JSON writer, all in one process per core: no worker processes, no
time limit, no admission, no cache) and drives it and `oxigraph serve-read-only` on the same
data with the random-city lookups of `bench/workloads.py`, interleaved. What it prints bounds
what any design of ours could reach on this machine, whatever it did with the isolation the
time limit needs. Needs the graphs `bench/run.py` builds (`bench/out/world`, `world-oxigraph`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import workloads  # noqa: E402 - beside this script
from processes import free_port, stop  # noqa: E402 - the tests' server helpers

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", choices=["uvicorn", "granian"], default="uvicorn")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    store, location = OUT / "world" / "store", OUT / "world-oxigraph"
    if wrk is None or not store.is_dir() or not location.is_dir():
        raise SystemExit("needs wrk and the graphs of bench/run.py (bench/out/world, world-oxigraph)")
    base = workloads.DEFAULT_BASE
    lookups = workloads.lookup_sequence(base, workloads.places(store, base), 20000)
    port, ref_port = free_port(), free_port()
    env = {**os.environ, "CEILING_STORE": str(store), "CEILING_BASE": base}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "bench"), env.get("PYTHONPATH")]))
    if args.server == "uvicorn":
        argv = [str(BIN / "uvicorn"), "ceiling_app:app", "--port", str(port), "--http", "httptools"]
        argv += ["--loop", "uvloop", "--workers", str(args.processes), "--no-access-log"]
        argv += ["--log-level", "warning"]
    else:
        argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port), "--no-ws"]
        argv += ["--workers", str(args.processes), "--log-level", "warning", "ceiling_app:app"]
    ours = subprocess.Popen(argv, env=env)
    ref = subprocess.Popen(
        [str(BIN / "oxigraph"), "serve-read-only", "--location", str(location)]
        + ["--bind", f"127.0.0.1:{ref_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    paths = {
        "ceiling": workloads.targets(
            lambda q: f"http://127.0.0.1:{port}/sparql?" + urllib.parse.urlencode({"query": q}), lookups
        ),
        "oxigraph": workloads.targets(
            lambda q: f"http://127.0.0.1:{ref_port}/query?"
            + urllib.parse.urlencode({"query": q})
            + "&union-default-graph",
            lookups,
        ),
    }
    roots = {"ceiling": f"http://127.0.0.1:{port}", "oxigraph": f"http://127.0.0.1:{ref_port}"}
    try:
        time.sleep(8)  # both load their store
        print(f"ceiling = {args.server}, {args.processes} process(es); random-city lookups, world graph")
        for round_ in range(args.rounds):
            for clients in (1, 8):
                order = ["ceiling", "oxigraph"] if round_ % 2 == 0 else ["oxigraph", "ceiling"]
                got = {n: workloads.run_wrk(wrk, roots[n], paths[n], clients, args.duration) for n in order}
                a, b = got["ceiling"], got["oxigraph"]
                print(
                    f"clients {clients}: ceiling {a.throughput:,.0f} req/s (p99 {a.p99_ms:.2f} ms), "
                    f"Oxigraph {b.throughput:,.0f} req/s (p99 {b.p99_ms:.2f} ms): "
                    f"{a.throughput / b.throughput:.2f}x, p99 {a.p99_ms / b.p99_ms:.2f}x"
                    + (f"; errors {a.errors}/{b.errors}" if a.errors or b.errors else ""),
                    flush=True,
                )
    finally:
        stop(ours)
        stop(ref)


if __name__ == "__main__":
    main()
