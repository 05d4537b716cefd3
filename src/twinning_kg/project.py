"""A city's project: `twinning-kg.toml` plus its data, read into `Settings`.

The kit (ontology/, shapes/, the code) is shared by every city; a project holds only one
city's data (`data/<key>/`, `imports/`, `partners/`), its catalog's hand-written parts
(`catalog/`) and this file. Every command takes `--project DIR`; without it the project is
the kit's own (Kassel's), at the kit's root.

The file (docs/publish-your-city.md has a complete one)::

    name = "Mulhouse"                      # the city's name, as the project calls it
    key = "mulhouse"                       # its place {base}id/place/<key>, data/<key>/, dataset/<key>
    base_iri = "https://data.example.org/twinning/"   # where the city's IRIs live; never the kit's
    languages = ["fr", "de", "en"]         # ISO 639-1: the languages its labels come in
    partners = ["https://w3id.org/twinning-kg/"]      # partner graphs `refresh-partners` reads

    [contact]                              # who answers for the published graph (all optional)
    name = "Open data team"
    email = "opendata@example.org"
    url = "https://example.org/contact"

Why a city's base IRI may not lie under the kit's: IRIs there are Kassel's and the
vocabulary's; a second graph minting them would make two publishers answer for one name.
A city's project speaks the kit's vocabulary (`Settings.vocabulary_iri`), so graphs of
different cities compare term by term (check-links matches the places by Wikidata).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from twinning_kg.config import DEFAULT_BASE_IRI, Settings, project_root

PROJECT_FILE = "twinning-kg.toml"
KEY = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
LANGUAGE = re.compile(r"[a-z]{2}")
FIELDS = {"name", "key", "base_iri", "languages", "partners", "contact"}
CONTACT_FIELDS = {"name", "email", "url"}


class ProjectError(Exception):
    """The project directory or its file is unusable; `str()` names the file and the key."""


@dataclass(frozen=True)
class Project:
    """One city's project, as `twinning-kg.toml` describes it."""

    directory: Path
    name: str
    key: str
    base_iri: str
    languages: tuple[str, ...]
    partners: tuple[str, ...] = ()
    contact_name: str | None = None
    contact_email: str | None = None
    contact_url: str | None = None
    # The kit's own project (Kassel's, at the kit's root): its IRIs are the kit's, and its
    # vocabulary follows its base IRI (so `build --base-iri` moves everything together).
    kit: bool = False

    @property
    def file(self) -> Path:
        return self.directory / PROJECT_FILE

    @property
    def city_iri(self) -> str:
        """The city's own place: `{base}id/place/{key}`."""
        return f"{self.base_iri}id/place/{self.key}"

    @classmethod
    def load(cls, directory: Path | str | None = None) -> Project:
        """The project in `directory` (default: the kit's own, Kassel's).

        A kit root without a project file (a copy of ontology/, data/ and shapes/, as
        `TWINNING_KG_HOME` may point at) is the kit's project with the kit's file.
        """
        kit_root = project_root().resolve()
        folder = Path(directory) if directory is not None else kit_root
        if not folder.is_dir():
            raise ProjectError(f"{folder}: no such project directory")
        kit = folder.resolve() == kit_root
        path = folder / PROJECT_FILE
        if not path.is_file():
            if not kit:
                raise ProjectError(
                    f"{folder}: no {PROJECT_FILE}; start a project with `twinning-kg new-city QID --out DIR`"
                )
            path = _kit_file()
        return cls._parse(path, folder, kit)

    @classmethod
    def _parse(cls, path: Path, folder: Path, kit: bool) -> Project:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProjectError(f"{path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ProjectError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ProjectError(f"{path}: {exc}") from exc
        unknown = sorted(set(raw) - FIELDS)
        if unknown:
            known = ", ".join(sorted(FIELDS))
            raise ProjectError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {known})")
        contact = raw.get("contact", {})
        if not isinstance(contact, dict) or set(contact) - CONTACT_FIELDS:
            raise ProjectError(f"{path}: [contact] takes only {', '.join(sorted(CONTACT_FIELDS))}")
        project = cls(
            directory=folder,
            name=_text(raw, "name", path),
            key=_matching(raw, "key", KEY, path, "lower-case letters and digits joined by '-' ('mulhouse')"),
            base_iri=_base_iri(raw, path, kit),
            languages=tuple(_list(raw, "languages", path, LANGUAGE, "two-letter ISO 639-1 codes")),
            partners=tuple(_urls(raw, path)),
            contact_name=_optional(contact, "name", path),
            contact_email=_optional(contact, "email", path),
            contact_url=_optional(contact, "url", path),
            kit=kit,
        )
        try:
            project.settings()  # the contact details are checked where Settings checks them
        except ValueError as exc:
            raise ProjectError(f"{path}: {exc}") from exc
        return project

    def settings(self, **overrides: Any) -> Settings:
        """Settings for this project; `overrides` (command-line options) win when not None."""
        values: dict[str, Any] = {
            "base_iri": self.base_iri,
            "city_key": self.key,
            "contact_name": self.contact_name,
            "contact_email": self.contact_email,
            "contact_url": self.contact_url,
        }
        if not self.kit:
            values["vocabulary_iri"] = DEFAULT_BASE_IRI
            values["project_dir"] = self.directory
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Settings(**values)


def _kit_file() -> Path:
    """The kit's own project file: in the source checkout, else packed into the wheel."""
    for candidate in (
        Path(__file__).resolve().parents[2] / PROJECT_FILE,
        Path(__file__).resolve().parent / "_resources" / PROJECT_FILE,
    ):
        if candidate.is_file():
            return candidate
    raise ProjectError(f"the kit's {PROJECT_FILE} is missing from this installation")


def _text(raw: dict[str, Any], key: str, path: Path) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ProjectError(f"{path}: {key} must be a non-empty line of text")
    return value.strip()


def _optional(raw: dict[str, Any], key: str, path: Path) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ProjectError(f"{path}: contact.{key} must be text")
    return value.strip() or None


def _matching(raw: dict[str, Any], key: str, pattern: re.Pattern[str], path: Path, what: str) -> str:
    value = _text(raw, key, path)
    if not pattern.fullmatch(value):
        raise ProjectError(f"{path}: {key} {value!r} must be {what}")
    return value


def _list(raw: dict[str, Any], key: str, path: Path, pattern: re.Pattern[str], what: str) -> list[str]:
    value = raw.get(key)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"{path}: {key} must be a non-empty list of {what}")
    bad = [v for v in value if not pattern.fullmatch(v)]
    if bad:
        raise ProjectError(f"{path}: {key}: {', '.join(map(repr, bad))} are not {what}")
    return list(dict.fromkeys(value))


def _urls(raw: dict[str, Any], path: Path) -> list[str]:
    value = raw.get("partners", [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"{path}: partners must be a list of URLs")
    for url in value:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ProjectError(f"{path}: partners: {url!r} is not an absolute http(s) URL")
    return list(dict.fromkeys(value))


def check_base_iri(base_iri: str, kit: bool = False) -> str:
    """An absolute http(s) IRI ending in '/', without query or fragment, and (for any
    project but the kit's own) not under the kit's base IRI. Raises ValueError saying why."""
    parts = urlsplit(base_iri)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"base IRI {base_iri!r}: need an absolute http(s) IRI without query or fragment")
    if not base_iri.endswith("/"):
        raise ValueError(f"base IRI {base_iri!r} must end with '/'")
    if not kit and base_iri.startswith(DEFAULT_BASE_IRI):
        raise ValueError(
            f"base IRI {base_iri!r} lies under the kit's own ({DEFAULT_BASE_IRI}): those IRIs are Kassel's "
            "and the vocabulary's; give an IRI under your city's own domain"
        )
    return base_iri


def _base_iri(raw: dict[str, Any], path: Path, kit: bool) -> str:
    value = raw.get("base_iri")
    if not isinstance(value, str):
        raise ProjectError(f"{path}: base_iri is required: the IRI your city's resources live under")
    try:
        return check_base_iri(value.strip(), kit)
    except ValueError as exc:
        raise ProjectError(f"{path}: {exc}") from exc
