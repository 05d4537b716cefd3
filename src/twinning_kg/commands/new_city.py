"""`twinning-kg new-city QID --out DIR`: start another city's project from outside data.

Thin CLI over `twinning_kg.sources.project_start` (what is written and why) and the
importers (how the outside data is read). Exit status: 0 written, 1 the input has nothing
for QID or lacks what curated data needs, 2 unreadable input or unusable options.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import click

from twinning_kg.commands._contact import contact_options
from twinning_kg.commands.cli_error import CliError
from twinning_kg.config import DEFAULT_BASE_IRI
from twinning_kg.project import KEY, LANGUAGE, Project, ProjectError, check_base_iri
from twinning_kg.sources import project_start
from twinning_kg.sources.importers import wdqs_json, wikidata_p190
from twinning_kg.sources.importers.model import InputError, is_qid
from twinning_kg.vocab import Iris

_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command("new-city")
@click.argument("qid")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="The new project's directory (absent or empty).")
@click.option("--crawl", nargs=2, type=_file, default=None, metavar="RELATIONS.tsv NAMES.tsv",
              help="Read the partnerships from the 2016 Wikidata P190 crawl.")
@click.option("--wdqs", type=_file, default=None, metavar="FILE.json",
              help="Read them from a Wikidata Query Service JSON result (importers/wdqs-p190.rq).")
@click.option("--base-iri", required=True, metavar="IRI",
              help="Where the city's IRIs will live: a domain it controls, ending in '/'.")
@click.option("--name", default=None, help="The city's name in the project (default: its English label).")
@click.option("--key", default=None, help="Its key: id/place/KEY, data/KEY/ (default: from the name).")
@click.option("--label", "labels", multiple=True, metavar="LANG=NAME",
              help="The city's name in a language (repeatable); German and English are needed.")
@click.option("--languages", default=None, metavar="de,en,fr",
              help="The languages of the project's labels (default: de, en and those of --label).")
@click.option("--partner", "partners", multiple=True, metavar="URL",
              help="A partner city's published graph, for refresh-partners (repeatable).")
@contact_options
def command(
    qid: str, out: Path, crawl: tuple[Path, Path] | None, wdqs: Path | None, base_iri: str,
    name: str | None, key: str | None, labels: tuple[str, ...], languages: str | None,
    partners: tuple[str, ...], contact: dict[str, str | None],
) -> None:
    """Start the project of the city QID (e.g. Q79815) from the crawl or a WDQS result: its
    place and provisional partnerships sourced to that data, a project file, the catalog's
    parts and a guide for its curator (CURATING.md)."""
    if (crawl is None) == (wdqs is None):
        raise CliError("give either --crawl RELATIONS.tsv NAMES.tsv or --wdqs FILE.json", exit_code=2)
    if not is_qid(qid):
        raise CliError(f"{qid!r} is not a Wikidata item id like Q79815", exit_code=2)
    request = project_start.CityRequest(
        qid=qid, base_iri=_base_iri(base_iri), name=name, key=_key(key), labels=_labels(labels),
        languages=_languages(languages), partners=_partners(partners),
        contact={k.removeprefix("contact_"): v for k, v in contact.items() if v},
    )
    try:
        if crawl is not None:
            batch = wikidata_p190.read(crawl[0], crawl[1])
        else:
            batch = wdqs_json.read(wdqs, Iris(request.base_iri, DEFAULT_BASE_IRI))
    except InputError as exc:
        raise CliError(f"{exc}; nothing was written", exit_code=exc.exit_code) from exc
    try:
        started = project_start.start(batch, request, out)
        Project.load(out)  # what was written is a usable project, or we say so now
    except project_start.StartError as exc:
        raise CliError(f"{exc}; nothing was written") from exc
    except ProjectError as exc:
        raise CliError(str(exc), exit_code=2) from exc
    click.echo(
        f"{started.name}: {started.partnerships} provisional partnership(s) "
        f"({started.one_way} one-way, {started.dated} dated) written to {out}/"
    )
    for path in started.files:
        click.echo(f"  {path.relative_to(out)}")
    for note in started.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"next: read {out}/CURATING.md; twinning-kg validate --project {out}")


def _base_iri(value: str) -> str:
    try:
        return check_base_iri(value)
    except ValueError as exc:
        raise CliError(f"--base-iri: {exc}", exit_code=2) from exc


def _key(value: str | None) -> str | None:
    if value is not None and not KEY.fullmatch(value):
        raise CliError(f"--key {value!r}: lower-case letters and digits joined by '-'", exit_code=2)
    return value


def _labels(values: tuple[str, ...]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        lang, _, text = value.partition("=")
        if not LANGUAGE.fullmatch(lang) or not text.strip() or not text.isprintable():
            raise CliError(f"--label {value!r}: write LANG=NAME with a two-letter language code", exit_code=2)
        labels[lang] = text.strip()
    return labels


def _partners(values: tuple[str, ...]) -> tuple[str, ...]:
    for url in values:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CliError(f"--partner {url!r}: an absolute http(s) URL", exit_code=2)
    return tuple(dict.fromkeys(values))


def _languages(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    found = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in found if not LANGUAGE.fullmatch(v)]
    if bad or not found:
        raise CliError(f"--languages {value!r}: two-letter ISO 639-1 codes separated by commas", exit_code=2)
    return found
