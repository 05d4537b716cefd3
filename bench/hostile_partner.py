"""How long the bounded linked-data client takes to give up on a hostile partner, and what it costs.

    .venv/bin/python bench/hostile_partner.py [--repeat 3]

Against the partner server of the tests (`tests/partner_server.py`, in this process), each
case is read with `sources.linked_data_client.read` in-process (the client's own cost,
without Python's start-up) and once through the CLI (`twinning-kg check-links`, what a
user waits for). Printed as a Markdown table for bench/RESULTS.md ("Hostile partners").
The limits are those of the test battery: `--timeout 3`, `--max-bytes 1048576`,
`--max-redirects 3` where a case needs them, the defaults otherwise.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import partner_server  # noqa: E402 - the tests' partner server
from twinning_kg.sources import linked_data_client as client  # noqa: E402

DEFAULT = client.Limits()
MIB = 1024 * 1024
# case -> (path, limits, what the partner does)
CASES = {
    "polite (Weimar, HTML -> N-Triples)": ("/weimar/", DEFAULT, "a page linking its N-Triples"),
    "polite (Rovaniemi, VoID -> .ttl.gz)": ("/rovaniemi/", DEFAULT, "a page, /.well-known/void, a gzip dump"),
    "stall": ("/stall", client.Limits(timeout=3), "headers, then 30 s of nothing"),
    "silent": ("/silent", client.Limits(timeout=3), "no answer for 30 s"),
    "drip": ("/drip", client.Limits(timeout=3), "one byte a second"),
    "endless": ("/endless", client.Limits(max_bytes=MIB), "an endless N-Triples body"),
    "gzip bomb": ("/bomb.nt.gz", client.Limits(max_bytes=MIB), "64 KB that unpack to 64 MiB"),
    "redirect loop": ("/loop", DEFAULT, "302 to itself"),
    "redirect chain": ("/hop/1", client.Limits(max_redirects=3), "302 to a new URL, forever"),
    "picture": ("/picture", DEFAULT, "image/png"),
    "lying": ("/lying", DEFAULT, "HTML served as text/turtle"),
}


def flags(limits: client.Limits) -> list[str]:
    out = []
    if limits.timeout != DEFAULT.timeout:
        out += ["--timeout", f"{limits.timeout:g}"]
    if limits.max_bytes != DEFAULT.max_bytes:
        out += ["--max-bytes", str(limits.max_bytes)]
    if limits.max_redirects != DEFAULT.max_redirects:
        out += ["--max-redirects", str(limits.max_redirects)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="in-process reads per case (median shown)")
    options = parser.parse_args()
    rows = []
    with partner_server.running() as base:
        for name, (path, limits, what) in CASES.items():
            times, outcome = [], ""
            for _ in range(options.repeat):
                started = time.perf_counter()
                try:
                    graph = client.read(base + path, limits)
                    outcome = f"read: {len(graph.graph)} triples, {graph.size:,} bytes"
                except client.RemoteGraphError as exc:
                    outcome = str(exc).replace(base, "")
                times.append(time.perf_counter() - started)
            started = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "twinning_kg", "check-links", *flags(limits), base + path],
                capture_output=True, text=True, timeout=120,
            )
            cli = time.perf_counter() - started
            rows.append((name, what, " ".join(flags(limits)) or "defaults", statistics.median(times), cli,
                         proc.returncode, outcome))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| partner | what it does | limits | client (median) | CLI | exit | outcome |")
    print("|---|---|---|---:|---:|---:|---|")
    for name, what, limits, median, cli, code, outcome in rows:
        print(f"| {name} | {what} | `{limits}` | {median:.2f} s | {cli:.2f} s | {code} | {outcome} |")
    print(f"\npeak RSS of the benchmark process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
