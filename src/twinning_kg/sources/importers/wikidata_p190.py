"""Read the 2016 Wikidata P190 crawl (`relations.tsv`, `names.tsv`) into an ImportBatch.

`relations.tsv` has one directed statement per line, `SUBJECT<TAB>OBJECT` (QIDs):
the subject's Wikidata item states P190 "twinned administrative body" = object.
`names.tsv` has `QID<TAB>NAME`; the crawl does not say in which language the name is,
so the label stays without a language tag. Both directions of a pair meet in one
record; a pair seen in one direction only becomes `tw:oneWay true` downstream.
Self-loops, malformed QIDs and short lines are skipped and counted, never guessed.
"""

from __future__ import annotations

from pathlib import Path

from rich.progress import Progress

from twinning_kg.sources.importers.model import ImportBatch, InputError, Label, is_qid

SOURCE_ID = "wikidata-p190-2016"
AREA = "wikidata-p190-2016"
# P190 "twinned administrative body" covers every sister-city relation on Wikidata;
# of our kind concepts, town twinning is the one it names (docs/importing.md).
P190_KIND = "town-twinning"


def read(relations: Path, names: Path, progress: Progress | None = None) -> ImportBatch:
    """Parse both files; raises InputError for an unreadable file (not for bad rows)."""
    batch = ImportBatch(title="Wikidata P190 crawl (2016)", area=AREA, source_id=SOURCE_ID)
    rel_lines = _lines(relations)
    name_lines = _lines(names)
    task = (
        progress.add_task("reading the crawl", total=len(rel_lines) + len(name_lines)) if progress else None
    )
    seen: set[tuple[str, str]] = set()
    for done, (number, line) in enumerate(rel_lines, start=1):
        where = f"{relations.name}:{number}"
        batch.rows += 1
        fields = line.split("\t")
        if len(fields) != 2:
            batch.skip("relation line without exactly two columns", where)
        elif not (is_qid(fields[0].strip()) and is_qid(fields[1].strip())):
            batch.skip("malformed QID", where)
        elif fields[0].strip() == fields[1].strip():
            batch.skip("self-loop", where)
        else:
            subject, obj = fields[0].strip(), fields[1].strip()
            if (subject, obj) in seen:
                batch.note("duplicate directed statement (counted once)", where)
            seen.add((subject, obj))
            record = batch.pair(subject, obj, where)
            record.kind = P190_KIND
            record.sources.add(SOURCE_ID)
        if task is not None and done % 2000 == 0:
            progress.update(task, completed=done)
    if task is not None:
        progress.update(task, completed=len(rel_lines))
    named: set[str] = set()
    for number, line in name_lines:
        where = f"{names.name}:{number}"
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1].strip():
            batch.skip("name line without a QID and a name", where)
        elif not is_qid(fields[0].strip()):
            batch.skip("malformed QID in names", where)
        elif fields[0].strip() not in batch.places:
            batch.note("name of a place in no kept relation (ignored)", where)
        else:
            qid = fields[0].strip()
            if qid in named:
                batch.note("second name for a QID (kept as another label)", where)
            named.add(qid)
            batch.add_label(qid, Label(fields[1].strip()))
    if task is not None:
        progress.update(task, completed=len(rel_lines) + len(name_lines))
    for qid in sorted(set(batch.places) - named):
        batch.note("place without a name in names.tsv (labelled with its QID)", qid)
        batch.add_label(qid, Label(qid))
    return batch


def _lines(path: Path) -> list[tuple[int, str]]:
    """Non-empty lines with their 1-based numbers; a clear error if the file is unreadable."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from exc
    return [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
