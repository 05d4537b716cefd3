"""Scale-out on one machine: front ends behind a tiny round-robin proxy, every request another city.

    .venv/bin/python bench/scale_out.py                 # ~3 minutes; builds bench/out/world if missing
    .venv/bin/python bench/scale_out.py --duration 20 --clients 1 8 16
    .venv/bin/python bench/scale_out.py --no-report     # print only, leave bench/RESULTS.md alone

A release never changes, so front ends serving it are interchangeable: N of them, each
with its copy of the release (or all over one shared engine, `serve --store`), behind
any HTTP load balancer (docs/scaling.md). This script shows it with the world release:
it starts `twinning-kg serve` front ends on free ports and the proxy below (a separate
process, so its CPU is its own), and drives them with `wrk` (one thread) through a Lua
script that makes every request a different query: Weimar's lookup from bench/run.py,
for another place each time (all places with partners, shuffled, in turn), with the
request's number as a trailing comment so that no two query texts are equal and no
response cache could answer one. Configurations:

- one front end, wrk straight at it (what the proxy costs is the difference to the next);
- one front end behind the proxy;
- two front ends behind the proxy (scale-out, the two sharing both cores);
- one front end with twice the query workers behind the proxy (more workers alone);
- one front end held to one core, then two front ends held to one core each (CPU
  affinity, inherited by their query workers): separate machines, simulated on one.

For each: requests/s, p50/p99 latency, non-2xx answers, and the CPU each part used (in
cores: front ends with their workers, proxy, wrk), which says where a 2-core machine's
time goes. Answers through the proxy are checked against a front end's own first.
The figures go to the "Scale-out" section of bench/RESULTS.md (kept by bench/run.py).

The proxy is layer 4: each client connection goes to the next back end in turn and its
bytes are spliced both ways by the kernel (`os.splice`, two threads per connection), so
the proxy costs little CPU and the measurement is of the front ends. A back end that
refuses a connection is skipped (a passive health check). Real deployments put HAProxy,
nginx or a cloud load balancer there; see docs/scaling.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pyoxigraph as ox

ROOT = Path(__file__).resolve().parents[1]
CRAWL = ROOT.parent / "shared" / "data" / "wikidata-p190-2016"
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
WORK = OUT / "scale-out"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Scale-out: front ends behind a round-robin proxy"
BASE = "https://w3id.org/twinning-kg/"
JSON = "application/sparql-results+json"
LOOKUP = (
    f"PREFIX tw: <{BASE}ontology#> PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#> "
    "SELECT ?partner ?label WHERE {{ <{place}> tw:twinnedWith ?partner . ?partner rdfs:label ?label }} "
    "ORDER BY ?label"
)
WRK_SCRIPT = """\
-- Every request another place, and a query text never sent before (trailing comment).
local paths = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
request = function()
  n = n + 1
  local path = paths[(n % #paths) + 1] .. "%20%23" .. n
  return wrk.format("GET", path, {["Accept"] = "application/sparql-results+json"})
end
"""
CHUNK = 1 << 16


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --------------------------------------------------------------------------- the proxy


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Move bytes from `source` to `target` until EOF, through a pipe, in the kernel."""
    read_end, write_end = os.pipe()
    try:
        while True:
            count = os.splice(source.fileno(), write_end, CHUNK)
            if count == 0:
                break
            while count:
                count -= os.splice(read_end, target.fileno(), count)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)
        os.close(read_end)
        os.close(write_end)


def _relay(client: socket.socket, backends: list[tuple[str, int]], turn: int) -> None:
    upstream = None
    for offset in range(len(backends)):  # round robin; a back end that refuses is skipped
        with contextlib.suppress(OSError):
            upstream = socket.create_connection(backends[(turn + offset) % len(backends)], timeout=2)
            break
    if upstream is None:
        client.close()
        return
    upstream.settimeout(None)
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def proxy_main(port: int, backends: list[str]) -> None:
    """Accept on 127.0.0.1:`port` until SIGTERM; each connection to the next back end."""
    targets = []
    for backend in backends:
        host, _, number = backend.rpartition(":")
        targets.append((host, int(number)))
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    turns = itertools.count()
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_relay, args=(client, targets, next(turns)), daemon=True).start()


# --------------------------------------------------------------------------- processes


class Process:
    """A child process whose CPU time (with its children's) can be read while it runs."""

    def __init__(
        self, name: str, argv: list[str], ready_url: str | None, cpus: set[int] | None = None
    ) -> None:
        """`cpus`: pin the process (and so its query workers, which inherit it) to these cores."""
        self.name = name
        self.log = (WORK / f"{name}.log").open("w")
        self.proc = subprocess.Popen(
            argv,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
        )
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 180
        while ready_url:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited ({self.proc.returncode}); see {self.log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, params={"query": "ASK {}"}, timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not answer within 180 s")
            time.sleep(0.1)

    def cpu(self) -> float:
        """User + system seconds of the process and its live children."""
        total = 0.0
        for proc in [self.ps, *self.ps.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    def workers(self) -> int:
        """Query worker processes now (the pool grows up to twice its size under load)."""
        count = 0
        for child in self.ps.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                count += any("spawn_main" in part for part in child.cmdline())
        return count

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def front_end(name: str, release: Path, workers: int, cpus: set[int] | None = None) -> tuple[Process, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "twinning-kg"), "serve", "--graph", str(release), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers)]
    return Process(name, argv, f"{url}/sparql", cpus), url


def proxy(name: str, backends: list[str]) -> tuple[Process, str]:
    port = free_port()
    hosts = [b.removeprefix("http://") for b in backends]
    process = Process(name, [sys.executable, __file__, "proxy", str(port), *hosts], None)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/sparql", params={"query": "ASK {}"}, timeout=2).status_code == 200:
                return process, url
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not answer")
        time.sleep(0.1)


# --------------------------------------------------------------------------- measuring


@dataclass
class Figures:
    config: str
    clients: int
    requests: int
    throughput: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_front: float  # cores used by the front ends and their workers
    cpu_proxy: float
    cpu_wrk: float
    cpu_others: float  # cores the rest of the machine took meanwhile (it is shared)


def wrk(url: str, clients: int, seconds: float, paths: Path) -> tuple[str, float]:
    """Run wrk; returns its report and the CPU seconds it used (from its rusage)."""
    argv = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "--timeout", "30s"]
    argv += ["-s", str(WORK / "lookups.lua"), url, "--", str(paths)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"wrk failed ({proc.returncode}):\n{output}")
    return output, usage.ru_utime + usage.ru_stime


def _busy() -> float:
    """CPU seconds the whole machine has spent not idle."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def parse_wrk(text: str) -> tuple[int, float, float, float, int]:
    def latency(pct: str) -> float:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not match:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    requests = int(re.search(r"(\d+) requests in", text).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    errors = int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", text)) else 0
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
    return requests, rate, latency("50"), latency("99"), errors


def measure(
    config: str,
    url: str,
    fronts: list[Process],
    proxy_process: Process | None,
    clients: int,
    seconds: float,
    paths: Path,
) -> Figures:
    wrk(url, clients, 2, paths)  # warm-up: connections, worker pipes, page cache
    before_front = sum(f.cpu() for f in fronts)
    before_proxy = proxy_process.cpu() if proxy_process else 0.0
    before_machine = _busy()
    started = time.perf_counter()
    text, wrk_cpu = wrk(url, clients, seconds, paths)
    elapsed = time.perf_counter() - started
    machine_cpu = _busy() - before_machine
    front_cpu = sum(f.cpu() for f in fronts) - before_front
    proxy_cpu = (proxy_process.cpu() - before_proxy) if proxy_process else 0.0
    requests, rate, p50, p99, errors = parse_wrk(text)
    figures = Figures(
        config,
        clients,
        requests,
        rate,
        p50,
        p99,
        errors,
        front_cpu / elapsed,
        proxy_cpu / elapsed,
        wrk_cpu / elapsed,
        max(0.0, machine_cpu - front_cpu - proxy_cpu - wrk_cpu) / elapsed,
    )
    say(
        f"{config}, {clients} client(s): {rate:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
        f"errors {errors}; cores: front ends {figures.cpu_front:.2f}, proxy {figures.cpu_proxy:.2f}, "
        f"wrk {figures.cpu_wrk:.2f}, others {figures.cpu_others:.2f}; "
        f"query workers {sum(f.workers() for f in fronts)}"
    )
    return figures


# --------------------------------------------------------------------------- the data


def world_release(reuse: bool) -> Path:
    """bench/out/world, imported with the real CLI when missing (the same as bench/run.py's)."""
    release = OUT / "world"
    if reuse and (release / "manifest.json").is_file():
        say(f"reusing {release}")
        return release
    if not CRAWL.is_dir():
        raise SystemExit(f"{CRAWL} is missing (../shared must sit beside the project)")
    say("importing the world graph ...")
    argv = [str(BIN / "twinning-kg"), "import", "wikidata-p190", str(CRAWL / "relations.tsv")]
    argv += [str(CRAWL / "names.tsv"), "--out", str(release)]
    proc = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"}
    )
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stderr[-3000:]}")
    return release


def lookup_paths(release: Path) -> tuple[Path, list[str]]:
    """One GET path per place with partners, shuffled (fixed seed); written for wrk."""
    store = ox.Store.read_only(str(release / "store"))
    places = sorted(
        s["place"].value
        for s in store.query(
            f"SELECT DISTINCT ?place WHERE {{ ?place <{BASE}ontology#twinnedWith> ?x }}",
            use_default_graph_as_union=True,
        )
    )
    random.Random(13).shuffle(places)
    paths = ["/sparql?query=" + urllib.parse.quote(LOOKUP.format(place=place), safe="") for place in places]
    (WORK / "lookups.lua").write_text(WRK_SCRIPT)
    target = WORK / "lookups.txt"
    target.write_text("\n".join(paths) + "\n")
    return target, places


def same_answers(direct: str, proxied: str, places: list[str]) -> bool:
    """Through the proxy (both back ends in turn), the front end's own answers."""
    for place in places:
        query = LOOKUP.format(place=place)
        answers = [
            httpx.get(f"{url}/sparql", params={"query": query}, headers={"Accept": JSON}, timeout=30)
            for url in (direct, proxied, proxied)
        ]
        if any(a.status_code != 200 for a in answers):
            return False
        if len({json.dumps(a.json()["results"]["bindings"], sort_keys=True) for a in answers}) != 1:
            return False
    return True


# --------------------------------------------------------------------------- report


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def report(figures: list[Figures], command: str, environment: dict[str, str], places: int, same: bool) -> str:
    """Medians over the rounds (the machine is shared: one run can be off by a third)."""
    configs = list(dict.fromkeys(f.config for f in figures))
    clients = sorted({f.clients for f in figures})
    rounds = max(1, len(figures) // max(1, len(configs) * len(clients)))
    lines = [
        SECTION,
        "",
        f"Command: `{command}` (written by `bench/scale_out.py`; how to deploy it: `docs/scaling.md`).",
        "",
        "Environment: " + ", ".join(f"{k} {v}" for k, v in environment.items()) + ".",
        "",
        f"Workload: Weimar's lookup (bench/run.py) for another place every request: {places:,} places "
        "with partners, shuffled, in turn, each query text made unique by a trailing comment "
        "(no response cache could answer one). World release; wrk with one thread. "
        "Proxy: layer 4, one client connection to each back end in turn, bytes spliced by the kernel. "
        f"Answers through the proxy equal a front end's own: {'yes' if same else '**no**'}.",
        "",
        f"Medians of {rounds} interleaved rounds (req/s: lowest–highest round in brackets); "
        "CPU in cores used during the run.",
        "",
        "| configuration | clients | req/s | p50 ms | p99 ms | errors | cores: front ends | proxy | wrk "
        "| other work on the machine | requests per front-end CPU second |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    medians: dict[tuple[str, int], float] = {}
    for n in clients:
        for config in configs:
            runs = [f for f in figures if f.config == config and f.clients == n]
            rate = median([f.throughput for f in runs])
            medians[config, n] = rate
            spread = f"{min(f.throughput for f in runs):,.0f}–{max(f.throughput for f in runs):,.0f}"
            lines.append(
                f"| {config} | {n} | {rate:,.0f} ({spread}) | {median([f.p50_ms for f in runs]):.2f} "
                f"| {median([f.p99_ms for f in runs]):.2f} | {sum(f.errors for f in runs)} "
                f"| {median([f.cpu_front for f in runs]):.2f} | {median([f.cpu_proxy for f in runs]):.2f} "
                f"| {median([f.cpu_wrk for f in runs]):.2f} | {median([f.cpu_others for f in runs]):.2f} "
                f"| {median([f.throughput / f.cpu_front for f in runs if f.cpu_front]):,.0f} |"
            )
    lines.append("")
    for single, double, what in (
        (CONFIGS[1], CONFIGS[2], "sharing both cores"),
        (CONFIGS[4], CONFIGS[5], "one core each (separate machines, simulated)"),
    ):
        gains = []
        for n in clients:
            one = [f for f in figures if f.config == single and f.clients == n]
            two = [f for f in figures if f.config == double and f.clients == n]
            if one and two and len(one) == len(two):
                ratios = sorted(b.throughput / a.throughput for a, b in zip(one, two, strict=True))
                gains.append(
                    f"{median(ratios):.2f}× at {n} client{'s' if n > 1 else ''} "
                    f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})"
                )
        if gains:
            lines += [
                f"Two front ends over one, {what}, both behind the proxy and measured one right "
                "after the other in each round (median of the rounds' ratios): " + "; ".join(gains) + ".",
                "",
            ]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    """Replace this script's section of RESULTS.md (appended after bench/run.py's analysis)."""
    current = RESULTS.read_text() if RESULTS.is_file() else ""
    start = current.find(SECTION)
    if start < 0:
        RESULTS.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + len(SECTION))
    notes = ""
    if end >= 0:
        notes = current[end + 1 :]
    # Hand-written paragraphs under the table ("### Why", ...) stay: they start with "### ".
    kept = current[start : end if end >= 0 else len(current)]
    why = kept.find("\n### ")
    if why >= 0:
        text = text + kept[why + 1 :].rstrip("\n") + "\n"
    RESULTS.write_text(current[:start] + text + ("\n" + notes if notes else ""))


CONFIGS = (
    "1 front end, no proxy",
    "1 front end",
    "2 front ends",
    "1 front end, 4 workers",
    "1 front end on 1 core",
    "2 front ends, 1 core each",
)


def main() -> None:
    parser = argparse.ArgumentParser(description="Scale-out: front ends behind a round-robin proxy.")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8], help="concurrent connections")
    parser.add_argument("--workers", type=int, default=2, help="query workers per front end")
    parser.add_argument(
        "--rounds", type=int, default=5, help="measure every configuration this often, interleaved; medians"
    )
    parser.add_argument("--no-reuse", action="store_true", help="import the world graph again")
    parser.add_argument("--no-report", action="store_true", help="do not touch bench/RESULTS.md")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian package wrk)")
    WORK.mkdir(parents=True, exist_ok=True)
    release = world_release(not args.no_reuse)
    paths, places = lookup_paths(release)
    say(f"{len(places):,} places to look up")
    environment = {
        "cores": str(os.cpu_count()),
        "Python": sys.version.split()[0],
        "load average at start": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "date": dt.date.today().isoformat(),
    }
    running: list[Process] = []
    figures: list[Figures] = []
    try:
        a, a_url = front_end("front-a", release, args.workers)
        b, b_url = front_end("front-b", release, args.workers)
        wide, wide_url = front_end("front-wide", release, 2 * args.workers)
        # Separate machines, simulated: each front end (with its workers) held to one core.
        first, second = sorted(os.sched_getaffinity(0))[:2]
        pin_a, pin_a_url = front_end("front-core-a", release, args.workers, {first})
        pin_b, pin_b_url = front_end("front-core-b", release, args.workers, {second})
        running += [a, b, wide, pin_a, pin_b]
        proxy_one, one_url = proxy("proxy-one", [a_url])
        proxy_wide, wide_proxy_url = proxy("proxy-wide", [wide_url])
        proxy_two, two_url = proxy("proxy-two", [a_url, b_url])
        proxy_pin_one, pin_one_url = proxy("proxy-core-one", [pin_a_url])
        proxy_pin_two, pin_two_url = proxy("proxy-core-two", [pin_a_url, pin_b_url])
        running += [proxy_one, proxy_wide, proxy_two, proxy_pin_one, proxy_pin_two]
        same = same_answers(a_url, two_url, places[:20])
        say(f"answers through the proxy equal the front end's own: {same}")
        setups = [
            (CONFIGS[0], a_url, [a], None),
            (CONFIGS[1], one_url, [a], proxy_one),  # and right after it, for a fair pair:
            (CONFIGS[2], two_url, [a, b], proxy_two),
            (CONFIGS[3].replace("4", str(2 * args.workers)), wide_proxy_url, [wide], proxy_wide),
            (CONFIGS[4], pin_one_url, [pin_a], proxy_pin_one),
            (CONFIGS[5], pin_two_url, [pin_a, pin_b], proxy_pin_two),
        ]
        for round_ in range(1, args.rounds + 1):
            say(f"round {round_} of {args.rounds}")
            for clients in args.clients:
                for config, url, fronts, proxy_process in setups:
                    figures.append(measure(config, url, fronts, proxy_process, clients, args.duration, paths))
    finally:
        for process in reversed(running):
            process.stop()
    text = report(
        figures,
        " ".join([".venv/bin/python bench/scale_out.py", *sys.argv[1:]]),
        environment,
        len(places),
        same,
    )
    print(text)
    if not args.no_report:
        write_section(text)
        say(f"wrote the scale-out section of {RESULTS}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "proxy":
        proxy_main(int(sys.argv[2]), sys.argv[3:])
    else:
        main()
