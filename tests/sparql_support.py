"""Helpers shared by the SPARQL endpoint tests: small releases and servers over them."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from rdflib import Dataset, URIRef

from conftest import ServerProcess
from twinning_kg.build import write_release
from twinning_kg.config import Settings


def release_of(
    out: Path, graphs: dict[str, Iterable[tuple]] | None = None, files: dict[str, Path] | None = None
) -> Path:
    """Write a release holding `graphs` (name -> triples) and `files` (name -> N-Triples file)."""
    dataset = Dataset()
    for name, triples in (graphs or {}).items():
        graph = dataset.graph(URIRef(name))
        for triple in triples:
            graph.add(triple)
    for name, path in (files or {}).items():
        dataset.graph(URIRef(name)).parse(path, format="nt")
    write_release(dataset, out, Settings())
    return out


def serve(release: Path, log_dir: Path, *args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`twinning-kg serve --graph RELEASE ARGS` on a free port, ready to answer."""
    return ServerProcess(["--graph", str(release), *args], env=env).start(log_dir)


def children(pid: int) -> set[int]:
    """Live child process ids of `pid` (from /proc, so no extra dependency)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry))
    return found


def sparql_workers(pid: int) -> set[int]:
    """The SPARQL worker processes among the children of the server `pid`."""
    workers = set()
    for child in children(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:  # multiprocessing's spawned children (not its resource tracker)
            workers.add(child)
    return workers
