"""`--project DIR`: every command reads a city's project the same way, and an unusable one
is one line naming the file and what is wrong (exit 2), never a traceback.

The working projects are tested end to end in test_twinning_web.py (new-city, validate,
build, serve, audit, check-links, refresh-partners on Mulhouse's project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run_cli

MULHOUSE = "https://data.mulhouse.example/"
GOOD = """name = "Mulhouse"
key = "mulhouse"
base_iri = "https://data.mulhouse.example/"
languages = ["de", "en", "fr"]
partners = []
"""

# twinning-kg.toml -> words the one line must hold
BROKEN = {
    "kit-base": (GOOD.replace(MULHOUSE, "https://w3id.org/twinning-kg/mulhouse/"), "under the kit's"),
    "no-slash": (GOOD.replace(MULHOUSE, "https://data.mulhouse.example"), "must end with '/'"),
    "unknown-key": (GOOD + 'colour = "blue"\n', "unknown key(s) colour"),
    "bad-key": (GOOD.replace('key = "mulhouse"', 'key = "Mul house"'), "key"),
    "bad-language": (GOOD.replace('"fr"', '"fra"'), "languages"),
    "bad-partner": (GOOD.replace("partners = []", 'partners = ["file:///etc/passwd"]'), "partners"),
    "not-toml": ("name = \n", "twinning-kg.toml"),
}
COMMANDS = [
    ["validate"], ["audit"], ["check-links", "x.ttl"], ["refresh-partners"],
    ["build", "--out", "site"], ["serve"],
]


def one_line_error(proc, *words: str, status: int = 2) -> None:  # noqa: ANN001 - a CompletedProcess
    assert proc.returncode == status, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_project_file_is_one_line_naming_it(tmp_path: Path, case: str) -> None:
    text, words = BROKEN[case]
    (tmp_path / "twinning-kg.toml").write_text(text, encoding="utf-8")
    one_line_error(run_cli("validate", "--project", str(tmp_path)), "twinning-kg.toml", words)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_refuses_a_directory_without_a_project(tmp_path: Path, command: list[str]) -> None:
    one_line_error(run_cli(*command, "--project", str(tmp_path)), str(tmp_path), "new-city")


def test_a_missing_project_directory_is_named(tmp_path: Path) -> None:
    one_line_error(run_cli("validate", "--project", str(tmp_path / "nowhere")), "nowhere")


# ------------------------------------------------------------------ new-city

WDQS = Path(__file__).resolve().parent / "fixtures" / "import" / "wdqs-p190.json"
WEIMAR = ["--base-iri", "https://data.weimar.example/", "--label", "de=Weimar", "--label", "en=Weimar"]


def test_new_city_from_a_wdqs_result_starts_a_project_that_validates(tmp_path: Path) -> None:
    out = tmp_path / "weimar"
    proc = run_cli("new-city", "Q3955", "--wdqs", str(WDQS), "--out", str(out), *WEIMAR)
    assert proc.returncode == 0, proc.stderr
    assert "4 provisional partnership(s) (2 one-way, 3 dated)" in proc.stdout
    partnerships = (out / "data" / "weimar" / "partnerships.ttl").read_text(encoding="utf-8")
    assert partnerships.count("a tw:Partnership , tw:ProvisionalPartnership") == 4
    assert partnerships.count("a tw:Establishment") == 3, "the dated ones, as the result dates them"
    config = (out / "twinning-kg.toml").read_text(encoding="utf-8")
    assert 'base_iri = "https://data.weimar.example/"' in config
    validate = run_cli("validate", "--project", str(out))
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_new_city_writes_nothing_over_a_project_or_for_a_city_not_in_its_source(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine", encoding="utf-8")
    proc = run_cli("new-city", "Q3955", "--wdqs", str(WDQS), "--out", str(taken), *WEIMAR)
    one_line_error(proc, "not an empty directory", "nothing was written", status=1)
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]

    unknown = tmp_path / "nowhere"
    proc = run_cli("new-city", "Q1", "--wdqs", str(WDQS), "--out", str(unknown), *WEIMAR)
    one_line_error(proc, "no partnership of Q1", "nothing was written", status=1)
    assert not unknown.exists()


def test_new_city_refuses_a_base_iri_under_the_kit_s(tmp_path: Path) -> None:
    out = tmp_path / "weimar"
    labels = ["--label", "de=Weimar", "--label", "en=Weimar"]
    proc = run_cli("new-city", "Q3955", "--wdqs", str(WDQS), "--out", str(out),
                   "--base-iri", "https://w3id.org/twinning-kg/weimar/", *labels)
    one_line_error(proc, "--base-iri")
    assert not out.exists()
