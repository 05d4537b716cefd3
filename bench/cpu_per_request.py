"""Where a request's CPU goes: our server's front process(es) and query workers, per request.

    .venv/bin/python bench/run.py --sizes world --queries lookup --no-report   # builds bench/out/world once
    .venv/bin/python bench/cpu_per_request.py                    # random-city lookups, 1 and 8 clients
    .venv/bin/python bench/cpu_per_request.py --fixed            # one query repeated: the cache's path
    .venv/bin/python bench/cpu_per_request.py --serve-args "--processes 2 --cache-mb 0"

Starts `twinning-kg serve` on a release built by `bench/run.py` (default `bench/out/world`),
drives it with wrk over the random-city lookups of `bench/workloads.py` (every request a
different place, so the engine path), and reads the CPU time (user + system, from psutil) of
the front processes and of the query worker processes before and after each run. Printed per
run: throughput, p50/p99, and microseconds of CPU per request in the front, in the workers and
on the whole machine (all processes, wrk included). Throughput alone cannot say whether a
change saved work or only moved it; this can.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import workloads  # noqa: E402 - beside this script
from processes import answers, free_port, stop, wait_ready  # noqa: E402 - the tests' server helpers

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _is_worker(process: psutil.Process) -> bool:
    """Query workers are multiprocessing children; front processes run the CLI."""
    try:
        return "multiprocessing" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def cpu_seconds(server: psutil.Process) -> dict[str, float]:
    """CPU seconds so far (user + system) of the front processes and of the workers."""
    totals = {"front": 0.0, "workers": 0.0}
    for process in [server, *server.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        totals["workers" if _is_worker(process) else "front"] += times.user + times.system
    return totals


def machine_seconds() -> float:
    times = psutil.cpu_times()
    return times.user + times.system + times.nice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graph", default=str(ROOT / "bench" / "out" / "world"), help="a release directory")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--fixed", action="store_true", help="one lookup repeated (the result cache's path)")
    parser.add_argument("--serve-args", default="", help="extra options for `twinning-kg serve`")
    args = parser.parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("this benchmark needs wrk (apt-get install wrk)")
    graph = Path(args.graph)
    manifest = graph / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"{graph} is not a release: build it with bench/run.py first")
    base = workloads.DEFAULT_BASE
    store = graph / "store"
    lookups = workloads.lookup_sequence(base, workloads.places(store, base), 20000)
    if args.fixed:
        lookups = [lookups[0].replace(workloads.UNIQUE, "")]
    port = free_port()
    argv = [str(BIN / "twinning-kg"), "serve", "--graph", str(graph), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--max-rows", "100000", "--queue-wait", "300", *args.serve_args.split()]
    log = (ROOT / "bench" / "out" / "cpu_per_request.log").open("w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)

    def url(query: str) -> str:
        return f"http://127.0.0.1:{port}/sparql?" + urllib.parse.urlencode({"query": query})

    try:
        wait_ready(proc, answers(url("ASK {}"), {"Accept": workloads.JSON}, timeout=5), 180, interval=0.05)
        server = psutil.Process(proc.pid)
        paths = workloads.targets(url, lookups)
        root = f"http://127.0.0.1:{port}"
        workloads.run_wrk(wrk, root, paths, max(args.clients), 1, warmup=0)  # warm: not measured
        print(f"{'clients':>7} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} | CPU µs per request: "
              f"{'front':>6} {'workers':>7} {'machine':>7}")
        for _round in range(args.rounds):
            for clients in args.clients:
                before, machine_before = cpu_seconds(server), machine_seconds()
                done = workloads.run_wrk(wrk, root, paths, clients, args.duration, warmup=0)
                after, machine_after = cpu_seconds(server), machine_seconds()
                n = max(1, done.requests)
                front = (after["front"] - before["front"]) / n * 1e6
                workers = (after["workers"] - before["workers"]) / n * 1e6
                machine = (machine_after - machine_before) / n * 1e6
                print(f"{clients:>7} {done.throughput:>8.0f} {done.p50_ms:>7.2f} {done.p99_ms:>7.2f} | "
                      f"{'':>20} {front:>6.0f} {workers:>7.0f} {machine:>7.0f}"
                      + (f"  ({done.errors} errors)" if done.errors else ""), flush=True)
    finally:
        stop(proc)
        log.close()


if __name__ == "__main__":
    main()
