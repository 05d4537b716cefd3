"""Start a city's project from outside data: what `twinning-kg new-city` writes.

The importers (`importers/wikidata_p190.py`, `importers/wdqs_json.py`) read the outside
data into an `ImportBatch`; this module keeps the pairs of one city and writes them in the
kit's model, each part where the loader gives it the right standing:

- `data/<key>/city.ttl`: the city itself, curated (German and English labels, which the
  caller gives or the source states with a language tag);
- `data/<key>/partnerships.ttl`: one `tw:ProvisionalPartnership` per pair: only a weak
  source says so yet, so nothing is invented (no label language the source does not state,
  no date it does not give; `docs/model.md`, "Provisional partnerships"); dates the source
  does give become lifecycle events sourced to it;
- `data/<key>/sources.ttl`: the source, described as the kit describes it (`tw:Weak`);
- `imports/<source>.ttl`: the partner places as the source names them, not curated;
- `catalog/`: the catalog's and VoID's hand-written parts, for the city;
- `twinning-kg.toml` and `CURATING.md`, the curator's next steps.

The files are Turtle a curator reads and edits (templates in `project_templates/`), with
the project's own IRIs relative (parsed against its base IRI, so changing `base_iri` in
the project file moves them all) and the kit's vocabulary absolute. The same batch gives
the same bytes.
"""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from rdflib import Literal
from rdflib.namespace import XSD

from twinning_kg.config import DEFAULT_BASE_IRI, Settings, catalog_dir
from twinning_kg.sources.importers import wdqs_json, wikidata_p190
from twinning_kg.sources.importers.model import ImportBatch, Label, PairRecord, parse_described
from twinning_kg.vocab import Iris

TEMPLATES = Path(__file__).resolve().parent / "project_templates"
IMPORTERS = Path(__file__).resolve().parent / "importers"
# Source id -> the kit's description of it, for a project that has none yet.
SOURCE_DESCRIPTIONS = {
    wikidata_p190.SOURCE_ID: IMPORTERS / "crawl-source.ttl",
    wdqs_json.SOURCE_ID: wdqs_json.SOURCE_FILE,
}
# The kit asks for these label languages on curated resources (shapes/curated.ttl).
REQUIRED_LANGUAGES = ("de", "en")
# What the kit's distributions name as the attribution; a city's project names its publisher.
KIT_ATTRIBUTION = 'dcatde:licenseAttributionByText "twinning-kg"'
# Event class, IRI slug per date of the source.
EVENTS = {"start": ("Establishment", "establishment"), "end": ("Ending", "ending")}


class StartError(Exception):
    """The city cannot be started from this input; `str()` says what to give instead."""


@dataclass(frozen=True)
class CityRequest:
    """What the curator asks for: the city's QID and how its project is to be named."""

    qid: str
    base_iri: str
    name: str | None = None
    key: str | None = None
    labels: dict[str, str] = field(default_factory=dict)  # language -> the city's name
    languages: tuple[str, ...] = ()
    partners: tuple[str, ...] = ()
    contact: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Started:
    """What was written: the files, the partnerships and what the curator should know."""

    directory: Path
    name: str
    key: str
    files: list[Path]
    partnerships: int
    one_way: int
    dated: int
    notes: list[str]


def start(batch: ImportBatch, request: CityRequest, out: Path) -> Started:
    """Write the project for `request.qid` from `batch` into `out` (absent or empty)."""
    pairs = sorted(
        (record for record in batch.pairs.values() if request.qid in (record.a, record.b)),
        key=lambda r: int(_partner_of(r, request.qid)[1:]),
    )
    if not pairs:
        raise StartError(f"{batch.title} states no partnership of {request.qid}; nothing to start from")
    labels = _city_labels(batch.places.get(request.qid, []), request)
    name = request.name or labels.get("en") or labels["de"]
    key = request.key or slug(name)
    if not key:
        raise StartError(f"cannot make a key of {name!r}: give --key (lower-case letters, digits, '-')")
    languages = tuple(dict.fromkeys(request.languages or (*REQUIRED_LANGUAGES, *sorted(labels))))
    _check_out(out)
    iris = Iris(request.base_iri, DEFAULT_BASE_IRI)
    env = _environment()
    known_languages = tomllib.loads((TEMPLATES / "languages.toml").read_text(encoding="utf-8"))
    notes = [
        f"language {lang!r} has no entry in the kit's language table: left out of the catalog's dct:language"
        for lang in languages if lang not in known_languages
    ]
    partnerships = [_partnership(record, request.qid, key, name, batch) for record in pairs]
    context: dict[str, Any] = {
        "name": name, "key": key, "qid": request.qid, "base_iri": request.base_iri,
        "vocabulary": DEFAULT_BASE_IRI, "languages": languages, "partners": request.partners,
        "contact": request.contact, "source_id": batch.source_id, "source_title": _title(batch),
        "count": len(partnerships), "example": partnerships[0]["local"] if partnerships else None,
        "labels": [Literal(text, lang=lang).n3() for lang, text in sorted(labels.items())],
        "partnerships": partnerships,
        "places": [_place(qid, batch.places.get(qid, [])) for qid in (p["qid"] for p in partnerships)],
        "label_note": _label_note(batch),
        "publisher": request.contact.get("name") or name,
        "language_iris": [
            f"lang:{known_languages[lang]['code']}" for lang in languages if lang in known_languages
        ] or ["lang:ENG"],
        "languages_known": [known_languages[lang] for lang in languages if lang in known_languages]
        or [known_languages["en"]],
    }
    files = {
        Path("twinning-kg.toml"): env.get_template("twinning-kg.toml.j2").render(context),
        Path("CURATING.md"): env.get_template("CURATING.md.j2").render(context),
        Path(".gitignore"): env.get_template("gitignore.j2").render(context),
        Path("data", key, "city.ttl"): env.get_template("city.ttl.j2").render(context),
        Path("data", key, "partnerships.ttl"): env.get_template("partnerships.ttl.j2").render(context),
        Path("data", key, "sources.ttl"): _sources(batch.source_id, iris),
        Path("imports", f"{batch.source_id}.ttl"): env.get_template("imports.ttl.j2").render(context),
        Path("catalog", "catalog.ttl"): env.get_template("catalog.ttl.j2").render(context),
        Path("catalog", "void.ttl"): env.get_template("void.ttl.j2").render(context),
        Path("catalog", "distributions.ttl"): _distributions(context["publisher"]),
    }
    written = []
    for relative, text in files.items():
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        written.append(path)
    return Started(
        directory=out, name=name, key=key, files=written, partnerships=len(partnerships),
        one_way=sum(p["one_way"] for p in partnerships), dated=sum(bool(p["events"]) for p in partnerships),
        notes=notes,
    )


def slug(text: str) -> str:
    """`Mülhausen` -> `mulhausen`, `Ramat Gan` -> `ramat-gan`: ASCII letters and digits joined by '-'."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _partner_of(record: PairRecord, qid: str) -> str:
    return record.b if record.a == qid else record.a


def _city_labels(stated: Iterable[Label], request: CityRequest) -> dict[str, str]:
    """The city's names by language: the source's tagged labels, then the curator's."""
    labels = {
        label.lang: label.text for label in stated if label.lang and re.fullmatch(r"[a-z]{2}", label.lang)
    }
    labels.update(request.labels)
    missing = [lang for lang in REQUIRED_LANGUAGES if lang not in labels]
    if missing:
        untagged = next((label.text for label in stated if not label.lang), None)
        hint = f" (the source names it {untagged!r}, in no stated language)" if untagged else ""
        wanted = " ".join(f"--label {lang}=NAME" for lang in missing)
        raise StartError(
            f"{request.qid} needs its name in German and English, as curated data does{hint}: give {wanted}"
        )
    return labels


def _title(batch: ImportBatch) -> str:
    return {
        wikidata_p190.SOURCE_ID: "the Wikidata P190 crawl of September 2016",
        wdqs_json.SOURCE_ID: "a Wikidata Query Service result (P190)",
    }.get(batch.source_id, batch.title)


def _label_note(batch: ImportBatch) -> str:
    if batch.source_id == wikidata_p190.SOURCE_ID:
        return "one name each, in no stated language: the crawl took the first of de, en, fr, it, es"
    return "with the language tags the source gives"


def _partnership(record: PairRecord, qid: str, key: str, name: str, batch: ImportBatch) -> dict[str, Any]:
    partner = _partner_of(record, qid)
    names = batch.places.get(partner, [])
    partner_name = next((label.text for label in names if label.lang == "en"), None) or (
        names[0].text if names else partner
    )
    local = f"{key}--{partner}"
    events = []
    for which in ("start", "end"):
        value = getattr(record, which)
        if value is not None:
            cls, kind = EVENTS[which]
            events.append({
                "cls": cls, "slug": f"{kind}-{value.lexical}", "precision": value.precision,
                "date": f'"{value.lexical}"^^xsd:{str(value.datatype).removeprefix(str(XSD))}',
            })
    if record.one_way:
        stated_by = qid if ("ab" in record.directions) == (record.a == qid) else partner
        directions = f"stated by {stated_by} only (one-way)"
    else:
        directions = "stated both ways"
    return {
        "qid": partner, "local": local, "partner_name": partner_name, "kind": record.kind or "town-twinning",
        "label": Literal(f"{name} – {partner_name}").n3(), "one_way": record.one_way, "events": events,
        "directions": directions, "where": record.where,
    }


def _place(qid: str, labels: list[Label]) -> dict[str, Any]:
    texts = [Literal(label.text, lang=label.lang).n3() for label in labels] or [Literal(qid).n3()]
    return {"qid": qid, "labels": texts}


def _sources(source_id: str, iris: Iris) -> str:
    """The kit's description of the source (and its publisher), as this project's Turtle."""
    described = parse_described(SOURCE_DESCRIPTIONS[source_id], iris)
    described.bind("tw", iris.TW, override=True)
    described.bind("source", f"{iris.base}id/source/", override=True)
    described.bind("agent", f"{iris.base}id/agent/", override=True)
    text = described.serialize(format="turtle")
    # The project's own prefixes relative, like every file under data/ (see module docstring).
    lines = [
        line.replace(f"<{iris.base}", "<") if line.startswith("@prefix") else line
        for line in text.splitlines()
    ]
    header = (
        f"# The sources the data cites, each tw:Strong or tw:Weak (docs/model.md). {source_id} is\n"
        "# described as the kit describes it; add every source you confirm a partnership with.\n"
    )
    return header + "\n".join(lines).strip() + "\n"


def _distributions(publisher: str) -> str:
    """The kit's distribution parts, attributed to this project's publisher."""
    text = (catalog_dir(Settings()) / "distributions.ttl").read_text(encoding="utf-8")
    if KIT_ATTRIBUTION not in text:
        raise StartError("the kit's catalog/distributions.ttl names no attribution any more; update new-city")
    return text.replace(KIT_ATTRIBUTION, f"dcatde:licenseAttributionByText {Literal(publisher).n3()}")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StartError(f"{out} exists and is not an empty directory; choose a new one")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False,
        keep_trailing_newline=True, trim_blocks=False,
    )
    env.filters["lit"] = lambda text, lang=None: Literal(str(text), lang=lang).n3()
    # TOML basic strings accept JSON's escapes (\", \\, \n, \uXXXX).
    env.filters["toml"] = lambda text: json.dumps(str(text), ensure_ascii=False)
    return env
