"""What gzip costs the front process: dump downloads, static assets, cached /sparql answers with gzip.

    .venv/bin/python bench/run.py --sizes world --queries lookup --no-report   # builds bench/out/world once
    .venv/bin/python bench/coding_cost.py                      # this checkout
    .venv/bin/python bench/coding_cost.py --src /tmp/old/src   # another checkout's code, same data

Starts `twinning-kg serve` on a release built by `bench/run.py` (default `bench/out/world`).
With `--src`, the server runs that source tree instead (PYTHONPATH), so two versions can be
compared on the same data in one session. Measured, in turn:

1. *Dumps*: one GET of the N-Quads dump with `Accept-Encoding: gzip` and one without, and
   the HEADs; wall time, server CPU (front and workers, psutil) and the bytes sent.
   Then YASGUI's script (1 MB), loaded by every visit of `/sparql`: 20 loads with gzip and
   20 without, server CPU per load.
2. *Cached answers with gzip*: wrk, 8 connections, one SELECT repeated (so every request
   after the first is a cache hit) at two result sizes, with `Accept-Encoding: gzip` as
   browsers and most HTTP libraries send it; requests per second and the front process's
   CPU per request. This is the cache's path, not the engine's (`bench/run.py` measures that).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from processes import answers, free_port, stop, wait_ready  # noqa: E402 - the tests' server helpers

ROOT = Path(__file__).resolve().parents[1]
SELECT = "SELECT%20*%20%7B%3Fs%20%3Fp%20%3Fo%7D%20LIMIT%20{n}"


def cpu(process: psutil.Process) -> float:
    """CPU seconds so far of `process` and its children."""
    total = 0.0
    for each in [process, *process.children(recursive=True)]:
        try:
            times = each.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def dumps(url: str, server: psutil.Process, name: str) -> None:
    for encoding in ("gzip", "identity"):
        for method in ("GET", "HEAD"):
            before, started = cpu(server), time.perf_counter()
            asked, target = {"Accept-Encoding": encoding}, f"{url}/dumps/{name}"
            with httpx.Client(timeout=300) as client, client.stream(method, target, headers=asked) as r:
                sent = sum(len(chunk) for chunk in r.iter_raw())
            print(
                f"dump {name} {method:4} Accept-Encoding {encoding:8}: {sent:>11,} bytes, "
                f"{time.perf_counter() - started:6.3f} s, server CPU {cpu(server) - before:6.3f} s, "
                f"Content-Length {r.headers.get('content-length')}, "
                f"Content-Encoding {r.headers.get('content-encoding')}"
            )


def asset(url: str, server: psutil.Process, path: str, times: int = 20) -> None:
    for encoding in ("gzip", "identity"):
        before, started = cpu(server), time.perf_counter()
        with httpx.Client(timeout=60) as client:
            for _ in range(times):
                with client.stream("GET", url + path, headers={"Accept-Encoding": encoding}) as r:
                    sent = sum(len(chunk) for chunk in r.iter_raw())
        print(
            f"asset {path} GET Accept-Encoding {encoding:8}: {sent:>9,} bytes, "
            f"server CPU {(cpu(server) - before) / times * 1e3:6.1f} ms per load, "
            f"{(time.perf_counter() - started) / times * 1e3:6.1f} ms wall, "
            f"Content-Length {r.headers.get('content-length')}"
        )


def cached(url: str, server: psutil.Process, rows: int, seconds: int) -> None:
    target = f"{url}/sparql?query={SELECT.format(n=rows)}"
    headers = {"Accept": "application/sparql-results+json", "Accept-Encoding": "gzip"}
    first = httpx.get(target, headers=headers, timeout=60)
    front = server  # the front process itself; workers are idle on hits
    before = sum(front.cpu_times()[:2])
    wrk = subprocess.run(
        ["wrk", "-t2", "-c8", f"-d{seconds}s", *(f"-H{k}: {v}" for k, v in headers.items()), target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    used = sum(front.cpu_times()[:2]) - before
    done = int(re.search(r"(\d+) requests in", wrk).group(1))
    print(
        f"cached SELECT LIMIT {rows:<4} ({len(first.content):>7,} bytes JSON, gzip): "
        f"{done / seconds:8,.0f} req/s, front CPU {used / done * 1e6:6.0f} µs per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graph", default=str(ROOT / "bench" / "out" / "world"), help="a release directory")
    parser.add_argument("--src", help="run the server from this source tree (another checkout's src/)")
    parser.add_argument("--dump", default="twinning-kg.nq")
    parser.add_argument("--rows", type=int, nargs="+", default=[20, 300])
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed (Debian package wrk)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **({"PYTHONPATH": str(Path(args.src).resolve())} if args.src else {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "twinning_kg", "serve", "--graph", args.graph, "--port", str(port)],
        env=env,
        cwd="/" if args.src else ROOT,  # with --src, nothing of this checkout on the path
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(proc, answers(url + "/sparql?query=ASK%7B%7D"), 120)
        server = psutil.Process(proc.pid)
        print(f"server: {args.src or ROOT / 'src'}; release {args.graph}")
        dumps(url, server, args.dump)
        asset(url, server, "/static/yasgui/yasgui.min.js")
        for rows in args.rows:
            cached(url, server, rows, args.duration)
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
