"""A private OpenLink Virtuoso for the tests: its own database, ini file and free ports.

Debian's `virtuoso-opensource` package may start a system instance (port 1111/8890)
and asks for a dba password at install time; nothing here uses either. Each instance
gets a fresh database in a temporary directory, listens on 127.0.0.1 only, runs in the
foreground as our child (and dies with us: Linux's parent-death signal), has its dba
password set to a random one through ISQL before any test sees it, and is stopped with
SIGTERM (Virtuoso's quick shutdown) at the end.

`.ci/run` installs the package; where it is missing the tests are skipped with the
reason, or fail in CI (`system_tools`, like every Debian tool the tests use).
"""

from __future__ import annotations

import contextlib
import ctypes
import secrets
import signal
import subprocess
import time
from pathlib import Path

import httpx

import system_tools
from conftest import free_port

VIRTUOSO = "virtuoso-t"
ISQL = "isql-vt"

# Settings that matter to the tests (and to docs/virtuoso.md): the store's own row cap
# (ResultSetMaxRows: it cuts results silently but for a header) and its own time limit
# (MaxQueryExecutionTime), both set apart from the front end's so each can be provoked.
INI = """\
[Database]
DatabaseFile       = {dir}/virtuoso.db
ErrorLogFile       = {dir}/virtuoso.log
LockFile           = {dir}/virtuoso.lck
TransactionFile    = {dir}/virtuoso.trx
xa_persistent_file = {dir}/virtuoso.pxa
ErrorLogLevel      = 7
FileExtend         = 200
MaxCheckpointRemap = 2000
Striping           = 0
TempStorage        = TempDatabase

[TempDatabase]
DatabaseFile       = {dir}/virtuoso-temp.db
TransactionFile    = {dir}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping           = 0

[Parameters]
ServerPort            = 127.0.0.1:{isql_port}
DisableUnixSocket     = 1
DisableTcpSocket      = 0
MaxClientConnections  = 20
CheckpointInterval    = 0
CaseMode              = 2
DirsAllowed           = {dir}
NumberOfBuffers       = 20000
MaxDirtyBuffers       = 15000
MaxQueryMem           = 256M
ThreadsPerQuery       = 2
AsyncQueueMaxThreads  = 4

[HTTPServer]
ServerPort            = 127.0.0.1:{http_port}
ServerRoot            = {dir}
MaxClientConnections  = 20
ServerThreads         = 20
EnabledDavVSP         = 0
Charset               = UTF-8
MaxKeepAlives         = 20
KeepAliveTimeout      = 10

[SPARQL]
ResultSetMaxRows           = {max_rows}
MaxQueryExecutionTime      = {max_seconds}
MaxQueryCostEstimationTime = 0
"""


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the test process ends, however it ends."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def require_virtuoso() -> str:
    """The path of `virtuoso-t`; skips (in CI: fails) when Virtuoso is not installed."""
    system_tools.require("virtuoso")
    return system_tools.program(VIRTUOSO)


class Virtuoso:
    """One Virtuoso server in `directory`; `sparql`, `gsp` are its endpoints."""

    def __init__(self, directory: Path, *, max_rows: int = 20_000, max_seconds: int = 30) -> None:
        self.binary = require_virtuoso()
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.http_port, self.isql_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.sparql = f"{self.url}/sparql"
        self.gsp = f"{self.url}/sparql-graph-crud-auth"  # the Graph Store endpoint with (Digest) auth
        self.password = "dba"  # a new database's; replaced in start()
        self.ini = directory / "virtuoso.ini"
        self.ini.write_text(
            INI.format(
                dir=directory,
                isql_port=self.isql_port,
                http_port=self.http_port,
                max_rows=max_rows,
                max_seconds=max_seconds,
            )
        )
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> Virtuoso:
        with (self.directory / "stdout.log").open("w") as log:
            self.proc = subprocess.Popen(
                [self.binary, "+configfile", str(self.ini), "+foreground"],
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"virtuoso-t exited ({self.proc.returncode}):\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.sparql, params={"query": "ASK {}"}, timeout=2).status_code == 200:
                    break
            time.sleep(0.2)
        else:
            self.stop()
            raise AssertionError(f"virtuoso-t did not answer within {timeout:.0f} s:\n{self.log()}")
        new = secrets.token_hex(12)
        self.isql(f"USER_SET_PASSWORD('dba', '{new}');")
        self.password = new
        return self

    def isql(self, sql: str) -> str:
        """Run SQL as dba through Virtuoso's ISQL port (non-interactive); returns its output."""
        proc = subprocess.run(
            [ISQL, f"127.0.0.1:{self.isql_port}", "dba", self.password, f"EXEC={sql}"],
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0 or "*** Error" in proc.stdout + proc.stderr:
            raise AssertionError(f"isql {sql!r} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def query(
        self, query: str, accept: str = "application/sparql-results+json", **params: str
    ) -> httpx.Response:
        """Ask the store directly (not through our front end)."""
        return httpx.post(
            self.sparql, data={"query": query, **params}, headers={"Accept": accept}, timeout=60
        )

    def counts(self) -> dict[str, int]:
        response = self.query("SELECT ?g (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } } GROUP BY ?g")
        assert response.status_code == 200, response.text
        return {b["g"]["value"]: int(b["n"]["value"]) for b in response.json()["results"]["bindings"]}

    def log(self) -> str:
        path = self.directory / "virtuoso.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # Virtuoso: "quick shutdown", a second or so
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
