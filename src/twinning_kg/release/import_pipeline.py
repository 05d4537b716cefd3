"""Curated data + one import batch -> checked release, with progress and a summary.

The steps are the build's own (`graph.materialise`, `release.builder.write_release`) and the
project's shapes (`checks.world_validation`: the same shapes and report as `checks.validation`,
a faster engine for the verdict), so an imported graph is published exactly like Kassel's:
same dumps, same store, same atomic swap, nothing written when the shapes fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from twinning_kg.checks import world_validation
from twinning_kg.config import Settings
from twinning_kg.graph.materialise import materialise
from twinning_kg.graph.prefixes import source_prefixes
from twinning_kg.release import builder
from twinning_kg.release.reader import Release
from twinning_kg.sources import loading
from twinning_kg.sources.importers.merge import MergeReport, merge
from twinning_kg.sources.importers.model import ImportBatch
from twinning_kg.vocab import Iris


@dataclass
class ImportOutcome:
    batch: ImportBatch
    merged: MergeReport
    release: Release
    timings: dict[str, float] = field(default_factory=dict)
    report: Any = None
    engine: str = ""  # which SHACL engine gave the verdict


def progress_bar(console: Console) -> Progress:
    """The one progress style of every import (works on a terminal and in a log)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:>8,}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@contextmanager
def _step(progress: Progress, timings: dict[str, float], name: str) -> Iterator[None]:
    task = progress.add_task(name, total=1)
    started = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - started
    progress.update(task, completed=1)


def run_import(
    read: Callable[[Progress], ImportBatch],
    out: Path,
    settings: Settings,
    console: Console,
) -> ImportOutcome:
    """Read, reconcile, materialise, validate, publish; raises on any failure (nothing written)."""
    timings: dict[str, float] = {}
    iris = Iris.of(settings)
    with progress_bar(console) as progress:
        with _step(progress, timings, "read input"):
            batch = read(progress)
        with _step(progress, timings, "load curated data"):
            loaded = loading.load(settings)
        with _step(progress, timings, "reconcile and merge"):
            merged = merge(loaded, batch, iris)
        with _step(progress, timings, "materialise twinnedWith"):
            materialise(loaded.dataset, settings)
        with _step(progress, timings, "validate (SHACL)"):
            report, engine = world_validation.validate(loaded, settings)
        if not report.conforms:
            raise builder.ValidationFailed(report)
        with _step(progress, timings, "write release"):
            release = builder.write_release(
                loaded.dataset, out, settings, prefixes=source_prefixes(settings)
            )
    return ImportOutcome(batch, merged, release, timings, report, engine)


def summary(outcome: ImportOutcome) -> Group:
    """What came in, what was reconciled or skipped, and what was written."""
    batch, merged, release = outcome.batch, outcome.merged, outcome.release
    table = Table(title=f"import: {batch.title}", show_header=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right", overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("input rows", batch.rows),
        ("pairs (unordered)", len(batch.pairs)),
        ("  new partnerships", merged.pairs_new),
        ("  of them one-way (tw:oneWay)", merged.one_way),
        ("  already curated (curated wins)", merged.pairs_curated),
        ("places", len(batch.places)),
        ("  new places", merged.places_new),
        ("  reconciled with curated (by QID)", merged.places_reconciled),
        ("skipped rows", sum(batch.skipped.values())),
    ]
    rows += [(f"  {reason}", count) for reason, count in sorted(batch.skipped.items())]
    rows += [(f"note: {what}", count) for what, count in sorted(batch.notes.items())]
    rows += [(f"note: {what}", count) for what, count in sorted(merged.notes.items()) if count]
    rows += [
        ("triples in the imported graph", merged.triples),
        ("quads in the release", release.manifest.get("quads")),
    ]
    rows += [("SHACL", f"conforms ({outcome.engine})")]
    rows += [(f"time: {step}", f"{seconds:.1f} s") for step, seconds in outcome.timings.items()]
    for name, value in rows:
        table.add_row(name, f"{value:,}" if isinstance(value, int) else str(value))
    for reason, examples in sorted(batch.examples.items()):
        if reason in batch.skipped:
            table.add_row(f"  e.g. ({reason})", ", ".join(examples))
    return Group(table, Text(f"graph   {merged.graph}\nrelease {release.path}"))
