"""The vendored assets under `/static` (YASGUI, map data, stylesheets), each gzipped once.

Starlette's StaticFiles sends a file as it is on disk, and the gzip layer then compressed
it on every request, in 64 KiB pieces on the event loop: YASGUI's script (1 MB), which
every visit of `/sparql` loads, cost the front about 50 ms of CPU per load. The assets do
not change while the server runs, so each one's gzip form is made on its first request
and kept (keyed by path, size and modification time): later loads cost a dictionary
lookup, and the answer has its `Content-Length`. Everything else (paths, 404s, validators,
304, ranges, files the gzip layer would not compress) is StaticFiles' and the gzip
layer's own behaviour (`web.compression`).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import NotModifiedResponse, StaticFiles
from starlette.types import Scope

from twinning_kg.web.compression import GZIP_MIN, accepts_gzip, compressible, gzip_body

# Headers of the file's response that do not describe its gzip form.
_NOT_COPIED = frozenset({"content-length", "accept-ranges"})


class StaticAssets(StaticFiles):
    """StaticFiles that answers a client accepting gzip with the file's kept gzip form."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory)
        self._gzipped: dict[tuple[str, int, int], bytes] = {}

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        request_headers = Headers(scope=scope)
        stored = FileResponse(full_path, status_code=status_code, stat_result=stat_result)
        if (
            status_code != 200
            or stat_result.st_size < GZIP_MIN
            or "range" in request_headers  # ranges are over the file as stored
            or not compressible(stored.media_type)
            or not accepts_gzip(request_headers.get("accept-encoding"))
        ):
            return super().file_response(full_path, stat_result, scope, status_code)
        headers = {k: v for k, v in stored.headers.items() if k not in _NOT_COPIED}
        headers["content-encoding"] = "gzip"
        headers["vary"] = "Accept-Encoding"
        headers["etag"] = headers["etag"][:-1] + '-gzip"'  # its own validator (RFC 9110 §8.8.3)
        if self.is_not_modified(Headers(headers), request_headers):  # against this form's ETag
            return NotModifiedResponse(Headers(headers))
        return Response(self._gzip_form(str(full_path), stat_result), headers=headers)

    def _gzip_form(self, path: str, stat_result: os.stat_result) -> bytes:
        key = (path, stat_result.st_size, stat_result.st_mtime_ns)
        form = self._gzipped.get(key)
        if form is None:
            with open(path, "rb") as file:
                form = gzip_body(file.read())
            self._gzipped[key] = form
        return form
