"""A synthetic crawl N times the size of the real one, generated deterministically.

Same model and same format as `../shared/data/wikidata-p190-2016` (so the same importer,
shapes and server handle it): copy 0 is the real crawl (Kassel, Weimar and their
neighbourhoods stay where the benchmark queries look for them); copies 1..N-1 renumber
every QID into their own range (`Q{k * 10^9 + n}`) and suffix the names. A fixed share of
the pairs of each copy is rewired to the next copy, both directions alike, so the graph
is one connected world rather than N islands while degrees, one-way pairs and
duplicates keep the real distribution. Same inputs, same seed -> byte-identical files.

    .venv/bin/python bench/synthetic.py ../shared/data/wikidata-p190-2016 OUT_DIR --factor 10
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

OFFSET = 10**9  # far above every real QID (Wikidata is at ~Q130M)
REWIRE = 0.05  # share of each copy's pairs that link to the next copy


def _qid(qid: str, copy: int) -> str:
    return qid if copy == 0 else f"Q{copy * OFFSET + int(qid[1:])}"


def generate(crawl: Path, out: Path, factor: int = 10, seed: int = 4) -> tuple[Path, Path]:
    """Write `relations.tsv` and `names.tsv` into `out`; returns their paths."""
    rows = [
        line.split("\t")
        for line in (crawl / "relations.tsv").read_text(encoding="utf-8").splitlines()
        if line
    ]
    names = [
        line.split("\t") for line in (crawl / "names.tsv").read_text(encoding="utf-8").splitlines() if line
    ]
    pairs = sorted({tuple(sorted(row, key=lambda q: int(q[1:]))) for row in rows})
    rng = random.Random(seed)
    # per copy, the pairs that cross into the next copy (decided once per unordered pair)
    crossing = [
        {pair for pair in pairs if rng.random() < REWIRE} if factor > 1 else set() for _ in range(factor)
    ]
    out.mkdir(parents=True, exist_ok=True)
    relations_path, names_path = out / "relations.tsv", out / "names.tsv"
    with relations_path.open("w", encoding="utf-8", newline="\n") as handle:
        for copy in range(factor):
            nxt = (copy + 1) % factor
            for subject, obj in rows:
                pair = tuple(sorted((subject, obj), key=lambda q: int(q[1:])))
                if pair in crossing[copy]:
                    # the larger QID of the pair moves to the next copy, for both directions
                    moved = pair[1]
                    s = _qid(subject, nxt if subject == moved else copy)
                    o = _qid(obj, nxt if obj == moved else copy)
                else:
                    s, o = _qid(subject, copy), _qid(obj, copy)
                handle.write(f"{s}\t{o}\n")
    with names_path.open("w", encoding="utf-8", newline="\n") as handle:
        for copy in range(factor):
            for qid, name in names:
                handle.write(f"{_qid(qid, copy)}\t{name if copy == 0 else f'{name} ({copy})'}\n")
    return relations_path, names_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("crawl", type=Path, help="folder with relations.tsv and names.tsv")
    parser.add_argument("out", type=Path)
    parser.add_argument("--factor", type=int, default=10)
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args()
    relations, names = generate(args.crawl, args.out, args.factor, args.seed)
    print(relations, names)


if __name__ == "__main__":
    main()
