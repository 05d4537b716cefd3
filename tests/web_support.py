"""The web app in-process: Starlette's TestClient over a real release and real query workers.

Pages, content negotiation and the IRI space are tested this way (no server process,
no port, failures point at the code); protocol conformance, attacks, real clients and
the browser keep testing the real server (`conftest.ServerProcess`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from twinning_kg.config import Settings
from twinning_kg.query.worker_pool import WorkerPoolEngine
from twinning_kg.release.reader import Release
from twinning_kg.web.app import create_app

# The test client's own address: an app started with this --base-url hands out IRIs the
# client can follow and query in-process.
LOCAL = "http://testserver/"


@contextmanager
def in_process(release_dir: Path, **settings: Any) -> Iterator[TestClient]:
    """A client of `create_app` over `release_dir`, its engine two worker processes
    (one for /sparql, one for the pages), stopped on exit."""
    release = Release.open(release_dir)
    configured = Settings(base_iri=release.base_iri, **{"workers": 1, "site_workers": 1, **settings})
    engine = WorkerPoolEngine(release.store_path, configured)
    try:
        # `with`: one event loop for the whole session, which the engine binds to
        with TestClient(create_app(configured, release, engine), base_url=LOCAL.rstrip("/")) as client:
            yield client
    finally:
        engine.shutdown()
