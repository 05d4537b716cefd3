"""Shared fixtures: the real CLI builds the graph once; the app serves it in-process
(`app`, `local_app`: pages and negotiation) and the real server on a free port (`server`,
`local_server`: protocol, attacks, clients, browser).

The in-process app is `create_app` with real query workers over the release the CLI
built, so what is tested is what a user runs, minus the HTTP server (`web_support`).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import system_tools
from processes import answers, free_port, stop, wait_ready
from web_support import LOCAL, in_process

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


FACTS_PIN = FIXTURES / "facts.sha256"


def shared_path(*parts: str) -> Path:
    """A path in ../shared; absent, the test is skipped with the reason (fails in CI:
    `system_tools`). A file of ../shared/facts must be the one data/ was curated against."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        system_tools.unavailable(f"{path} is not available (../shared must sit beside the project)")
    if parts[:1] == ("facts",) and path.is_file():
        check_facts_pin(path)
    return path


def check_facts_pin(path: Path) -> None:
    """Fail with what to do when a facts file differs from its pin (tests/fixtures/facts.sha256).

    The ground truth may gain rows; data/ then has to follow, deliberately: the tests that
    compare data/ with the facts would otherwise fail one by one, or pass on stale rows.
    """
    pins = dict(reversed(line.split("  ", 1)) for line in FACTS_PIN.read_text().splitlines() if line)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if pins.get(path.name) != digest:
        state = "is new" if path.name not in pins else "changed"
        pytest.fail(
            f"facts changed: ../shared/facts/{path.name} {state} since data/ was curated against it. "
            f"Review the change, bring data/ (and the tests' expectations) in line with it, then "
            f"update the pin: (cd ../shared/facts && sha256sum *) > tests/fixtures/facts.sha256",
            pytrace=False,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test marked with a tool's name (`@pytest.mark.rapper`, ...) needs that tool: skipped
    without it, failed where everything is required (CI). Runs before `skipif` marks, so a
    test's own skip condition cannot hide a missing tool in CI."""
    for name in system_tools.TOOLS:
        if item.get_closest_marker(name) is not None:
            system_tools.require(name)


def run_cli(*args: str, check: bool = False, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run `python -m twinning_kg ARGS` as a user would; returns the completed process."""
    proc = subprocess.run(
        [sys.executable, "-m", "twinning_kg", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kwargs.pop("cwd", ROOT),
        **kwargs,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"twinning-kg {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


class ServerProcess:
    """`twinning-kg serve` in a subprocess on a free port, stopped with SIGTERM."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [*args, "--host", "127.0.0.1", "--port", str(self.port)]
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None
        self.log_path: Path | None = None

    def start(self, log_dir: Path, ready_timeout: float = 120) -> ServerProcess:
        self.log_path = log_dir / f"server-{self.port}.log"
        log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "twinning_kg", "serve", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=self.env,
        )
        wait_ready(self.proc, answers(self.url + "/sparql?query=ASK%7B%7D"), ready_timeout, log=self.log)
        return self

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self) -> int | None:
        return stop(self.proc) if self.proc else None


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Kassel graph built once by the real CLI: `twinning-kg build --out DIR`."""
    out = tmp_path_factory.mktemp("build") / "site"
    run_cli("build", "--out", str(out), check=True)
    return out


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Wikidata P190 crawl imported once by the real CLI (issue 4); its log beside it."""
    crawl = shared_path("data", "wikidata-p190-2016")
    out = tmp_path_factory.mktemp("world") / "world"
    proc = run_cli("import", "wikidata-p190", str(crawl / "relations.tsv"), str(crawl / "names.tsv"),
                   "--out", str(out), check=True, env={**os.environ, "COLUMNS": "200"})
    (out.parent / "import.log").write_text(proc.stderr + proc.stdout)
    return out


@pytest.fixture(scope="session")
def server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server on a free port, serving `site`."""
    srv = ServerProcess(["--graph", str(site)]).start(tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def base_url(server: ServerProcess) -> str:
    return server.url


@pytest.fixture(scope="session")
def local_server(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The real server with `--base-url` set to its own address, so every IRI of ours in what
    it serves (catalog download URLs, VoID dumps) can be followed, as a harvester would."""
    srv = ServerProcess(["--graph", str(site)])
    srv.args += ["--base-url", srv.url + "/"]
    srv.start(tmp_path_factory.mktemp("logs"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def app(site: Path) -> Iterator[TestClient]:
    """The app over `site` in-process (Starlette's TestClient), with real query workers."""
    with in_process(site) as client:
        yield client


@pytest.fixture(scope="session")
def local_app(site: Path) -> Iterator[TestClient]:
    """The same app started with `--base-url` the test client's address (`LOCAL`), so every
    IRI of ours it hands out can be followed and queried in-process, as on a laptop."""
    with in_process(site, base_url=LOCAL) as client:
        yield client
