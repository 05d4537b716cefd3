"""Plot the figures of the last `bench/run.py` (and `bench/cache_mix.py`) run: ours vs Oxigraph.

    .venv/bin/python bench/plot.py            # reads bench/out/results.json (+ cache_mix.json)

Writes `bench/results.png`: per size, throughput (top) and p99 latency (bottom, log scale)
for each query at 1 and 8 clients, the two servers side by side; the Zipf mix of the
cache benchmark, when measured, as one more query ("zipf (cache)"). A measurement in which
either server failed requests (errors in the raw figures) is left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

OUT = Path(__file__).resolve().parent / "out"
PNG = Path(__file__).resolve().parent / "results.png"
SERVERS = (("twinning-kg", "ours", "#1f77b4"), ("oxigraph", "Oxigraph", "#ff7f0e"))


def series() -> dict[str, dict[str, dict[tuple[str, int], dict[str, float]]]]:
    """size -> server -> (query, clients) -> {throughput, p99_ms}."""
    data: dict[str, dict[str, dict[tuple[str, int], dict[str, float]]]] = {}
    for size in json.loads((OUT / "results.json").read_text()):
        for name, server in size["servers"].items():
            for query, loads in server["loads"].items():
                for clients, load in loads.items():
                    data.setdefault(size["name"], {}).setdefault(name, {})[(query, int(clients))] = load
    mix = OUT / "cache_mix.json"
    if mix.is_file():
        for row in json.loads(mix.read_text()):
            if row["size"] in data:
                data[row["size"]].setdefault(row["server"], {})[("zipf (cache)", row["clients"])] = row
    return data


def main() -> None:
    data = series()
    sizes = list(data)
    fig, axes = plt.subplots(2, len(sizes), figsize=(7 * len(sizes), 8), squeeze=False)
    for column, size in enumerate(sizes):
        ours = data[size]["twinning-kg"]
        # a measurement with failed requests (429s, timeouts) is not a figure: left out
        keys = [
            k
            for k in ours
            if not any(data[size].get(s, {}).get(k, {}).get("errors", 0) for s, _, _ in SERVERS)
        ]
        labels = [f"{q.replace('-', chr(10)).replace(' ', chr(10))}\n{c} cl." for q, c in keys]
        x = range(len(labels))
        for row, (metric, title) in enumerate((("throughput", "requests/s"), ("p99_ms", "p99 latency, ms"))):
            ax = axes[row][column]
            for offset, (server, label, colour) in enumerate(SERVERS):
                values = [data[size].get(server, {}).get(key, {}).get(metric, 0.0) for key in keys]
                ax.bar([i + (offset - 0.5) * 0.4 for i in x], values, 0.4, label=label, color=colour)
            ax.set_xticks(list(x), labels, fontsize=7)
            ax.set_ylabel(title)
            ax.set_yscale("log")
            ax.set_title(f"{size}: {title}")
            ax.grid(axis="y", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("twinning-kg serve vs oxigraph serve-read-only (same data, same run, interleaved)")
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)
    print(PNG)


if __name__ == "__main__":
    main()
