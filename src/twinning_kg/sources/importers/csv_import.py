"""Read a contributor CSV (`data/templates/partnerships-template.csv`) into an ImportBatch.

One row per partnership between two places named by their Wikidata QIDs. The columns
and their rules are documented in docs/importing.md; every problem is reported as
`FILE:LINE: column: what is wrong`, and a file with any problem imports nothing.
A row states the partnership itself (not a direction), so CSV pairs are never one-way.
Sources a row names but the curated data does not describe are described from the
row's `source_*` columns (a URL and a publisher at least).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDF

from twinning_kg.sources.importers.model import ImportBatch, InputError, Label, parse_date, qid_from
from twinning_kg.vocab import SCHEMA, Iris

COLUMNS = (
    "place_a_wikidata",
    "place_a_label",
    "place_a_label_lang",
    "place_b_wikidata",
    "place_b_label",
    "place_b_label_lang",
    "kind",
    "start",
    "start_precision",
    "end",
    "end_precision",
    "status",
    "status_since",
    "source_id",
    "source_url",
    "source_publisher",
    "source_language",
    "source_kind",
    "source_reliability",
)
REQUIRED = ("place_a_wikidata", "place_b_wikidata", "kind", "source_id")
SLUG_RE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LANG_RE = re.compile(r"[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{1,8})*")
RELIABILITY = {"strong": "Strong", "weak": "Weak"}


@dataclass
class _Source:
    url: str
    publisher: str
    language: str
    kind: str
    reliability: str
    where: str


def default_area(path: Path) -> str:
    """Graph name from the file name: `weimar-partnerships.csv` -> `contrib-weimar-partnerships`."""
    slug = re.sub(r"[^a-z0-9]+", "-", path.stem.lower()).strip("-") or "csv"
    return f"contrib-{slug}"


def read(path: Path, iris: Iris, area: str | None = None) -> ImportBatch:
    """Parse and check the whole file; raises InputError listing every bad cell."""
    batch = ImportBatch(title=f"CSV {path.name}", area=area or default_area(path), source_id="")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    # newline="": the csv module's own line handling, so a quoted cell may hold a line break
    # and Unicode separators (U+2028, form feed, ...) stay inside their cell instead of
    # splitting the row, as str.splitlines() would.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, [])
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}: {exc}") from exc
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing or unknown:
        problems = [f"missing column(s) {', '.join(missing)}"] if missing else []
        problems += [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        raise InputError(
            f"{path}:1: {'; '.join(problems)} (template: data/templates/partnerships-template.csv)"
        )
    errors: list[str] = []
    sources: dict[str, _Source] = {}
    for first, cells in _rows(reader, path, errors):
        where = f"{path}:{first}"
        batch.rows += 1
        if len(cells) > len(header):
            errors.append(f"{where}: more cells than columns")
            continue
        cell = {name: cells[i].strip() if i < len(cells) else "" for i, name in enumerate(header)}
        errors += _row(batch, cell, where, sources)
    if batch.rows == 0:
        errors.append(f"{path}: no rows")
    if errors:
        shown = errors[:20] + ([f"... and {len(errors) - 20} more"] if len(errors) > 20 else [])
        raise InputError("\n".join(shown))
    batch.extra = _describe_sources(sources, iris)
    return batch


def _rows(reader: Any, path: Path, errors: list[str]) -> Iterator[tuple[int, list[str]]]:
    """(line where the row starts, its cells) for each non-blank row after the header.

    `reader.line_num` counts the physical lines read so far: after a row it is the row's
    *last* line (a quoted cell may span lines), so the row starts one past the count before
    reading it. (csv.DictReader's own `line_num` is only updated after a successful read,
    which put every csv.Error one line too early.) A csv.Error names the line where reading
    stopped, and the row's first line when that differs.
    """
    while True:
        before = reader.line_num
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            failing = max(reader.line_num, before + 1)
            span = f" (the row starting at line {before + 1})" if failing != before + 1 else ""
            errors.append(f"{path}:{failing}: {exc}{span}")
            return
        if cells:  # a blank line is no row
            yield before + 1, cells


def _row(batch: ImportBatch, cell: dict[str, str], where: str, sources: dict[str, _Source]) -> list[str]:
    errors = [f"{where}: {c}: required" for c in REQUIRED if not cell.get(c)]
    qids: list[str] = []
    for side in ("a", "b"):
        raw = cell.get(f"place_{side}_wikidata", "")
        qid = qid_from(raw)
        if raw and qid is None:
            errors.append(
                f"{where}: place_{side}_wikidata: {raw!r} is not a Wikidata QID (Q123 or its entity IRI)"
            )
        lang = cell.get(f"place_{side}_label_lang", "")
        if lang and not LANG_RE.fullmatch(lang):
            errors.append(f"{where}: place_{side}_label_lang: {lang!r} is not a BCP 47 language tag")
        if lang and not cell.get(f"place_{side}_label"):
            errors.append(f"{where}: place_{side}_label_lang given without place_{side}_label")
        qids.append(qid or "")
    if all(qids) and qids[0] == qids[1]:
        errors.append(f"{where}: a place cannot partner itself ({qids[0]})")
    dates = {}
    for name in ("start", "end"):
        if cell.get(name):
            try:
                dates[name] = parse_date(cell[name], cell.get(f"{name}_precision"))
            except ValueError as exc:
                errors.append(f"{where}: {name}: {exc}")
        elif cell.get(f"{name}_precision"):
            errors.append(f"{where}: {name}_precision given without {name}")
    if cell.get("status_since"):
        try:
            if parse_date(cell["status_since"]).precision != "day":
                raise ValueError("must be a day, YYYY-MM-DD")
        except ValueError as exc:
            errors.append(f"{where}: status_since: {exc}")
    source_id = cell.get("source_id", "")
    if source_id and not SLUG_RE.fullmatch(source_id):
        errors.append(f"{where}: source_id: {source_id!r} must be lower-case letters, digits and hyphens")
    errors += _source(cell, where, sources)
    if errors:
        return errors

    record = batch.pair(qids[0], qids[1], where, directed=False)
    for field_name, value in (
        ("kind", cell["kind"]),
        ("status", cell.get("status") or None),
        ("status_since", cell.get("status_since") or None),
        ("start", dates.get("start")),
        ("end", dates.get("end")),
    ):
        current = getattr(record, field_name)
        if value is not None and current is not None and current != value:
            return [f"{where}: {field_name} {value!r} contradicts {current!r} stated at {record.where}"]
        if value is not None:
            setattr(record, field_name, value)
    record.sources.add(source_id)
    for side, qid in zip(("a", "b"), qids, strict=True):
        if cell.get(f"place_{side}_label"):
            batch.add_label(
                qid, Label(cell[f"place_{side}_label"], cell.get(f"place_{side}_label_lang") or None)
            )
    return []


def _source(cell: dict[str, str], where: str, sources: dict[str, _Source]) -> list[str]:
    """Collect a row's source description (if it gives one); rows must agree about a source."""
    given = {k: cell.get(f"source_{k}", "") for k in ("url", "publisher", "language", "kind", "reliability")}
    if not any(given.values()):
        return []  # the source must then be described in the curated data (checked at merge)
    errors = [
        f"{where}: source_{k}: required when describing a new source"
        for k in ("url", "publisher")
        if not given[k]
    ]
    if given["url"] and not re.fullmatch(r"https?://\S+", given["url"]):
        errors.append(f"{where}: source_url: {given['url']!r} is not an http(s) URL")
    if given["reliability"] and given["reliability"].lower() not in RELIABILITY:
        errors.append(f"{where}: source_reliability: {given['reliability']!r} is not strong or weak")
    if given["language"] and not (LANG_RE.fullmatch(given["language"]) or given["language"] == "mul"):
        errors.append(f"{where}: source_language: {given['language']!r} is not an ISO 639-1 code (or mul)")
    if errors:
        return errors
    source = _Source(**given, where=where)
    earlier = sources.setdefault(cell["source_id"], source)
    if (earlier.url, earlier.publisher) != (source.url, source.publisher):
        return [f"{where}: source {cell['source_id']!r} described differently than at {earlier.where}"]
    return []


def _describe_sources(sources: dict[str, _Source], iris: Iris) -> Graph:
    """The rows' own source descriptions, in the curated data's model (tw:Source + publisher agent)."""
    graph = Graph()
    TW = iris.TW
    for source_id, source in sorted(sources.items()):
        node = iris.source(source_id)
        agent = iris.id[f"agent/{re.sub(r'[^a-z0-9]+', '-', source.publisher.lower()).strip('-')}"]
        graph.add((node, RDF.type, TW.Source))
        graph.add((node, SCHEMA.url, URIRef(source.url)))
        graph.add((node, DCTERMS.publisher, agent))
        graph.add((agent, RDF.type, FOAF.Organization))
        graph.add((agent, RDF.type, SCHEMA.Organization))
        graph.add((agent, FOAF.name, Literal(source.publisher)))
        if source.language:
            graph.add((node, DCTERMS.language, Literal(source.language.lower())))
        if source.kind:
            graph.add((node, TW.sourceKind, Literal(source.kind)))
        if source.reliability:
            graph.add((node, TW.reliability, TW[RELIABILITY[source.reliability.lower()]]))
    return graph
