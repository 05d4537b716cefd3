"""The README keeps its promise to a newcomer, and the documentation's links hold.

README.md is short, says nothing only the project's developers could follow (issue numbers,
the reference material beside the checkout), names the two commands as the Makefile has
them, and its example queries answer what it shows, against a server started as
`make serve` starts it. Every relative link in README.md and docs/*.md reaches a file, and
every anchor a heading of that file; docs/README.md lists every page.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from conftest import ROOT, ServerProcess

README = ROOT / "README.md"
DOCS = ROOT / "docs"
MAKEFILE = ROOT / "Makefile"
MAX_README_LINES = 220
# Pages written for the project's own developers may name ../shared; no other page may.
DEVELOPER_PAGES = {"development.md", "architecture.md"}

FENCE = re.compile(r"^\s*```")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
EXAMPLE = re.compile(r"```sh\n(curl [^`]*?)\n```\n\n```text\n(.*?)```", re.DOTALL)


def pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `#` in a query is no heading, a link in a
    code sample is no link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed,
    spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[`*]", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    links = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        links += [target for target in LINK.findall(line) if not SCHEME.match(target)]
    return links


def make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*)\s*:(?!=)", MAKEFILE.read_text(encoding="utf-8"), re.M))


def make_default(name: str) -> str:
    return re.search(rf"^{name}\s*\?=\s*(\S+)", MAKEFILE.read_text(encoding="utf-8"), re.M).group(1)


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, (
        f"README.md has {len(lines)} lines (at most {MAX_README_LINES}): move detail to docs/"
    )


def test_readme_names_no_issue_and_no_reference_material() -> None:
    text = README.read_text(encoding="utf-8")
    assert not re.search(r"issue\s*#?\d", text, re.IGNORECASE), "README.md mentions an issue number"
    assert "../shared" not in text, "README.md points at ../shared, which users do not have"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md") if p.name not in DEVELOPER_PAGES))
def test_user_pages_do_not_point_at_the_reference_material(page: str) -> None:
    assert "../shared" not in (DOCS / page).read_text(encoding="utf-8"), (
        f"docs/{page} is for users, who have no ../shared (only docs/development.md may name it)"
    )


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_a_heading(page: Path) -> None:
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.is_relative_to(ROOT) or not path.exists():
            broken.append(f"{link}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no heading #{anchor} in {path.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_link_checker_sees_links_and_anchors() -> None:
    """Guard against a checker that passes because it finds nothing."""
    assert "docs/model.md" in relative_links(README)
    assert "worked-query-which-of-kassels-partnerships-were-active-on-1-march-2022" in anchors(
        DOCS / "model.md"
    )
    assert slug("`twinning-kg audit` and `/audit`") == "twinning-kg-audit-and-audit"
    assert slug("Following links on your own machine: `--base-url`") == (
        "following-links-on-your-own-machine---base-url"
    )


def test_the_index_lists_every_page() -> None:
    listed = {link.partition("#")[0] for link in relative_links(DOCS / "README.md")}
    missing = sorted(p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in listed)
    assert not missing, f"docs/README.md does not list {missing}"


def test_readme_commands_are_the_makefile_targets() -> None:
    text = README.read_text(encoding="utf-8")
    quick_start = re.search(r"```sh\n(.*?)```", text, re.DOTALL).group(1)
    assert re.findall(r"^make (\w+)", quick_start, re.M) == ["serve", "test"]
    mentioned = set(re.findall(r"`make (\w+)", text)) | {"serve", "test"}
    unknown = mentioned - make_targets()
    assert not unknown, f"README.md names make targets that do not exist: {sorted(unknown)}"
    address = f"http://{make_default('HOST')}:{make_default('PORT')}/"
    assert address in quick_start, f"`make serve` serves at {address}, which the README should say"


def readme_examples() -> list[tuple[str, str, str, list[str]]]:
    """(accept, query, endpoint, expected lines) of each curl example with its answer."""
    examples = []
    for command, answer in EXAMPLE.findall(README.read_text(encoding="utf-8")):
        accept = re.search(r"-H 'Accept: ([^']+)'", command).group(1)
        query, endpoint = re.search(r"--data-urlencode 'query=(.*)' (\S+)$", command, re.DOTALL).groups()
        examples.append((accept, query, endpoint, answer.splitlines()))
    return examples


def test_readme_has_three_examples_one_of_them_the_lifecycle_query() -> None:
    examples = readme_examples()
    assert len(examples) == 3
    address = f"http://{make_default('HOST')}:{make_default('PORT')}/sparql"
    assert {endpoint for _, _, endpoint, _ in examples} == {address}
    lifecycle = [lines for _, query, _, lines in examples if '"2022-03-01"' in query]
    assert len(lifecycle) == 1 and len(lifecycle[0]) == 1 + 8  # header and eight partnerships


@pytest.mark.parametrize("index", range(3))
def test_readme_example_answers_as_shown(local_server: ServerProcess, index: int) -> None:
    """Each curl example, sent as curl sends it (a form POST) to a server started like
    `make serve` (with --base-url its own address), answers exactly the lines shown."""
    accept, query, _, expected = readme_examples()[index]
    response = httpx.post(f"{local_server.url}/sparql", data={"query": query},
                          headers={"Accept": accept}, timeout=60)
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == expected
