"""Sources -> graph -> checks -> release directory, atomically.

`build()` is what `twinning-kg build` runs. `write_release()` is the publishing half on
its own, so the world importer and other tests can publish any dataset the same way.

Atomicity (issue 3): everything is written into a hidden temporary directory beside the
releases, fsync'ed, renamed to `DIR.releases/<version>`, and only then is the `DIR`
symlink replaced with `os.replace` (atomic on POSIX). A failing build (bad Turtle, SHACL
violations, a crash half-way) therefore never changes what `DIR` points to, and a server
that resolved `DIR` keeps reading a complete release.
"""

from __future__ import annotations

import fcntl
import gc
import hashlib
import json
import mimetypes
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyoxigraph as ox
from rdflib import Dataset, Graph

from twinning_kg import vocab
from twinning_kg.config import Settings, catalog_dir
from twinning_kg.graph.materialise import materialise
from twinning_kg.graph.prefixes import merge_prefixes, source_prefixes
from twinning_kg.graph.quads import oxigraph_quads, rdflib_dataset
from twinning_kg.release import catalog, dumps, leases
from twinning_kg.release.catalog_parts import CatalogError
from twinning_kg.release.reader import MANIFEST, Release, Stamp
from twinning_kg.release.source_date import SourceDate, SourceDateError, source_date
from twinning_kg.sources import loading, partner_snapshots
from twinning_kg.vocab import tw

KEEP_RELEASES = 3


class BuildError(Exception):
    """An expected build failure; `exit_code` is what the CLI exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ValidationFailed(BuildError):
    """The data does not conform to the shapes; carries the validation report."""

    def __init__(self, report: Any) -> None:
        super().__init__("the data does not conform to the shapes; nothing was written", exit_code=1)
        self.report = report


# --- the build pipeline -------------------------------------------------------------------


def build(settings: Settings, out: Path | str, *, sources: SourceDate | None = None) -> Release:
    """Load, materialise tw:twinnedWith, validate, publish into `out` (see module doc).

    `sources`: the date of the sources (default: `sources_date(settings)`). Raises
    `loading.SourceError` for a file that cannot be parsed (file:line in the message),
    `ValidationFailed` when the shapes report violations, `BuildError` when `out` cannot
    be used or the sources cannot be dated. In every failure case `out` is left as it was.
    """
    sources = sources or sources_date(settings)
    loaded = loading.load(settings)
    materialise(loaded.dataset, settings)
    validate(loaded, settings)
    partner_snapshots.load_into(loaded.dataset, settings)  # theirs: neither validated nor materialised
    return write_release(loaded.dataset, out, settings, prefixes=source_prefixes(settings), sources=sources)


def sources_date(settings: Settings) -> SourceDate:
    """When what a release is made of last changed: the data (ontology/, data/, imports/,
    partners/) and the catalog's hand-written parts (catalog/); not shapes/, which check
    but add nothing."""
    folders = [settings.ontology_dir, settings.data_dir, settings.imports_dir, settings.partners_dir]
    try:
        return source_date([*folders, catalog_dir(settings)])
    except SourceDateError as exc:
        raise BuildError(f"cannot date the release: {exc}", exit_code=2) from exc


def validate(loaded: loading.Loaded, settings: Settings) -> Any:
    """Run the shapes (`twinning_kg.checks.validation`); raise ValidationFailed when they fire."""
    from twinning_kg.checks import validation  # pyshacl is heavy: only a build that validates loads it

    report = validation.validate(loaded, settings)
    if not report.conforms:
        raise ValidationFailed(report)
    return report


# --- publishing ---------------------------------------------------------------------------


def write_release(
    dataset: Any,
    out: Path | str,
    settings: Settings,
    *,
    extra: Mapping[str, bytes | str | Path] | None = None,
    prefixes: Mapping[str, str] | None = None,
    timings: dict[str, float] | None = None,
    sources: SourceDate | None = None,
) -> Release:
    """Publish `dataset` as a release and point the `out` symlink at it, atomically.

    `dataset`: an rdflib Dataset/Graph, an Oxigraph Dataset/Store, or an iterable of
    Oxigraph quads. `extra`: additional files (name -> content or a path to copy) to put
    into the release; they are checksummed and listed in the manifest like the rest.
    `prefixes`: namespace bindings for Turtle/RDF/XML (else those bound in an rdflib
    dataset); only those the data uses are written. `timings`, if given, receives seconds
    per step (for the importer's summary and the benchmarks). `sources`: the date the
    catalog gives the release (default: `sources_date(settings)`, the project's sources).
    """
    out = Path(out)
    sources = sources or sources_date(settings)
    parent, releases = _prepare_out(out)
    with _locked(releases):
        _remove_stale_temporaries(releases)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=releases))
        tmp.chmod(0o755)  # mkdtemp makes it private; a server may run as another user
        try:
            manifest_bytes, version = _write_contents(
                dataset, tmp, settings, extra, prefixes, _Stopwatch(timings), sources.when
            )
            target = _install(tmp, releases, version, manifest_bytes)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        _swap_symlink(out, parent, target)
        _prune(releases, keep=target)
    return Release.open(target)  # what this call published, even if another build follows


def _write_contents(
    dataset: Any,
    directory: Path,
    settings: Settings,
    extra: Mapping[str, bytes | str | Path] | None,
    prefixes: Mapping[str, str] | None,
    clock: _Stopwatch,
    date: datetime,
) -> tuple[bytes, str]:
    """Write store, dumps, catalog and VoID, extras, SHA256SUMS and (last) the manifest."""
    with clock("canonical N-Quads"):
        canonical = dumps.canonicalize(oxigraph_quads(dataset))
    bound = dataset.namespaces() if isinstance(dataset, Graph) else ()
    chosen = merge_prefixes((prefixes or {}).items(), bound, _default_prefixes(settings))

    # Oxigraph's bulk loader releases the GIL: the store loads while the dumps are written
    # (the largest step at the world's scale; about a third faster on 2 cores).
    with clock("store, dumps and gzip"), ThreadPoolExecutor(max_workers=1) as pool:
        loading_store = pool.submit(_write_store, directory / "store", canonical)
        files = dumps.write_dumps(canonical, directory, chosen)
        stats = loading_store.result()
    with clock("catalog and VoID"):
        stamp = Stamp(version=canonical.version, date=date)
        files.update(_write_catalog(dataset, canonical, files, settings, directory, chosen, stamp))
    for name, content in sorted((extra or {}).items()):
        files[name] = _write_extra(directory, name, content, files)

    dumps.write_bytes(directory / dumps.SUMS_NAME, dumps.sha256sums(files))
    files[dumps.SUMS_NAME] = dumps.file_info(directory / dumps.SUMS_NAME, "text/plain")

    manifest: dict[str, Any] = {
        "version": canonical.version,
        "base_iri": settings.base_iri,
        "triples": canonical.triples,
        "quads": canonical.quads,
        "graphs": stats.graphs,
        "files": {name: info.as_dict() for name, info in sorted(files.items())},
    }
    if stats.default_graph:
        manifest["default_graph"] = stats.default_graph
    if settings.vocabulary != settings.base_iri:
        manifest["vocabulary_iri"] = settings.vocabulary
    manifest_bytes = (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    dumps.write_bytes(directory / MANIFEST, manifest_bytes)
    _fsync_dir(directory)
    return manifest_bytes, canonical.version


def _default_prefixes(settings: Settings) -> list[tuple[str, str]]:
    """Fallbacks when the caller's data carries no bindings (e.g. an Oxigraph dataset)."""
    return [
        ("tw", str(tw(settings.vocabulary))),
        ("rdf", str(vocab.RDF)), ("rdfs", str(vocab.RDFS)), ("owl", str(vocab.OWL)),
        ("xsd", str(vocab.XSD)), ("skos", str(vocab.SKOS)), ("prov", str(vocab.PROV)),
        ("dcterms", str(vocab.DCTERMS)), ("foaf", str(vocab.FOAF)), ("schema", str(vocab.SCHEMA)),
        ("wd", str(vocab.WD)), ("wdt", str(vocab.WDT)), ("geo", str(vocab.GEO)),
        ("geosparql", str(vocab.GSP)), ("dcat", str(vocab.DCAT)), ("void", str(vocab.VOID)),
    ]


def _write_catalog(
    dataset: Any,
    canonical: dumps.Canonical,
    files: dict[str, dumps.FileInfo],
    settings: Settings,
    directory: Path,
    prefixes: Mapping[str, str],
    stamp: Stamp,
) -> dict[str, dumps.FileInfo]:
    """The catalog and VoID (`catalog.describe`), written as deterministic Turtle.

    `describe` works on an rdflib Dataset; other inputs are converted from the canonical
    N-Quads (only then, since it costs time and memory at the world's scale).
    """
    if not isinstance(dataset, Dataset):
        dataset = rdflib_dataset(canonical.nquads)
    try:
        described = {name: info.as_dict() for name, info in files.items()}
        graphs = catalog.describe(dataset, described, settings, stamp)
    except CatalogError as exc:
        raise BuildError(f"catalog/VoID: {exc}", exit_code=2) from exc
    written: dict[str, dumps.FileInfo] = {}
    for name, graph in sorted(graphs.items()):
        _check_name(name, files)
        path = directory / name
        dumps.write_bytes(path, dumps.deterministic_turtle(graph, prefixes))
        written[name] = dumps.file_info(path, "text/turtle")
    return written


def _write_extra(
    directory: Path, name: str, content: bytes | str | Path, files: Mapping[str, Any]
) -> dumps.FileInfo:
    _check_name(name, files)
    path = directory / name
    if isinstance(content, Path):
        shutil.copyfile(content, path)
    else:
        dumps.write_bytes(path, content.encode("utf-8") if isinstance(content, str) else content)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return dumps.file_info(path, media_type)


def _check_name(name: str, files: Mapping[str, Any]) -> None:
    reserved = {MANIFEST, dumps.SUMS_NAME, "store"}
    if not name or "/" in name or name.startswith(".") or name in reserved or name in files:
        raise BuildError(f"cannot add a release file named {name!r} (reserved, duplicate or not plain)")


@dataclass
class StoreStats:
    """Counts taken from the freshly written store (SPARQL in Rust, not Python loops)."""

    graphs: dict[str, int]
    default_graph: int


def _write_store(path: Path, canonical: dumps.Canonical) -> StoreStats:
    """Bulk-load the canonical N-Quads into an on-disk Oxigraph store, count, close it.

    The store is dropped (closed) before the swap, so query workers can open it
    read-only. Oxigraph's bulk loader renames blank nodes, so data with blank nodes goes
    through the parser (which keeps labels) to keep the canonical labels in the store too.
    """
    store = ox.Store(str(path))
    try:
        if canonical.has_blank_nodes:
            store.bulk_extend(ox.parse(canonical.nquads, format=ox.RdfFormat.N_QUADS))
        else:
            store.bulk_load(canonical.nquads, format=ox.RdfFormat.N_QUADS)
        store.flush()
        store.optimize()
        stats = StoreStats(
            graphs={
                row["g"].value: int(row["n"].value)
                for row in store.query("SELECT ?g (COUNT(*) AS ?n) { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
            },
            default_graph=int(next(iter(store.query("SELECT (COUNT(*) AS ?n) { ?s ?p ?o }")))["n"].value),
        )
        count = len(store)
    finally:
        del store
        gc.collect()
    if count != canonical.quads:
        raise BuildError(f"the store holds {count} quads, the canonical dump {canonical.quads}")
    stats.graphs = dict(sorted(stats.graphs.items()))
    return stats


# --- the directory dance ------------------------------------------------------------------


def _prepare_out(out: Path) -> tuple[Path, Path]:
    """Check `out` can become our symlink; returns (its parent, `out.releases`)."""
    if out.name in ("", ".", ".."):
        raise BuildError(f"--out {out}: give a directory name, not {out.name or '/'!r}", exit_code=2)
    parent = out.absolute().parent
    if out.is_symlink():
        pass
    elif out.is_dir():
        if any(out.iterdir()):
            raise BuildError(
                f"{out} is a directory that is not a twinning-kg release link; refusing to replace it "
                "(move it away or choose another --out)",
                exit_code=2,
            )
    elif out.exists():
        raise BuildError(f"{out} exists and is not a directory; refusing to replace it", exit_code=2)
    releases = parent / f"{out.name}.releases"
    try:
        releases.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create {releases}: {exc.strerror or exc}", exit_code=2) from exc
    return parent, releases


@contextmanager
def _locked(releases: Path) -> Iterator[None]:
    """One build at a time per output (a second one waits)."""
    with (releases / ".lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_stale_temporaries(releases: Path) -> None:
    """Leftovers of a build that was killed; safe because we hold the lock."""
    for path in releases.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
    leases.finish_interrupted_prunes(releases)


def _install(tmp: Path, releases: Path, version: str, manifest_bytes: bytes) -> Path:
    """Rename the finished temporary directory to its release name.

    Same data and same files (identical manifest) -> reuse the existing release; same data
    but different files (e.g. a changed catalog) -> a name qualified by the manifest hash.
    """
    qualified = f"{version}-{hashlib.sha256(manifest_bytes).hexdigest()[:12]}"
    for name in (version, qualified):
        target = releases / name
        if not target.exists():
            os.rename(tmp, target)
            _fsync_dir(releases)
            return target
        existing = target / MANIFEST
        if existing.is_file() and existing.read_bytes() == manifest_bytes:
            shutil.rmtree(tmp)
            os.utime(target)  # newest again, for pruning
            return target
    raise BuildError(f"{releases}: {version} and {qualified} exist with other contents; remove them")


def _swap_symlink(out: Path, parent: Path, target: Path) -> None:
    for stale in parent.glob(f".{out.name}.swap-*"):  # left by a killed build; we hold the lock
        stale.unlink(missing_ok=True)
    link = parent / f".{out.name}.swap-{os.getpid()}"
    os.symlink(os.path.relpath(target, parent), link)
    if out.is_dir() and not out.is_symlink():
        out.rmdir()  # checked empty in _prepare_out
    os.replace(link, out)
    _fsync_dir(parent)


def _prune(releases: Path, keep: Path) -> None:
    """Keep the newest KEEP_RELEASES releases (always the current one); older ones go,
    except a release a running server holds a lease on (`release.leases`): a server keeps
    serving the release it started with, so deleting it would pull the files from under it.
    """
    others = [p for p in releases.iterdir() if p.is_dir() and not p.name.startswith(".") and p != keep]
    others.sort(key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)
    for old in others[KEEP_RELEASES - 1:]:
        leases.prune(releases, old)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Stopwatch:
    """`with clock("step"):` adds the step's seconds to a dict, or does nothing without one."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.timings is not None:
                self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - start
