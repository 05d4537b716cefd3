"""A partner city's HTTP server for the tests and the benchmark: published graphs at some
paths, and at others every kind of trouble a linked-data client must survive (an endless
body, a 30 s stall, a byte a second, redirect loops, a wrong or lying media type, a gzip
bomb). It runs in a thread of the caller's process (`running()`); it imports neither the
project nor pytest, like `processes.py`.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "links"


@cache
def bomb() -> bytes:
    """64 MiB of spaces, gzipped once: about 64 KB on the wire."""
    return gzip.compress(b" " * (64 * 1024 * 1024))


class Partner(BaseHTTPRequestHandler):
    """A partner city's server: published graphs at some paths, every kind of trouble at others."""

    stop = threading.Event()  # set at teardown: a stalling answer ends at once

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def send(self, status: int, media: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: C901, N802 - one branch per kind of partner
        path = self.path
        if path == "/weimar/":  # a landing page linking its data (one-way: only theirs)
            link = '<link rel="alternate" type="application/n-triples" href="/weimar/data.nt">'
            page = f"<!doctype html><html><head>{link}</head><body>Weimar</body></html>"
            self.send(200, "text/html", page.encode())
        elif path == "/weimar/data.nt":
            self.send(200, "application/n-triples", (FIXTURES / "weimar-one-way.nt").read_bytes())
        elif path == "/rovaniemi/":  # a page without links: the client asks /.well-known/void
            self.send(200, "text/html; charset=utf-8", b"<!doctype html><title>Rovaniemi</title>")
        elif path == "/.well-known/void":
            void = (
                "@prefix void: <http://rdfs.org/ns/void#> .\n"
                "<#rovaniemi> a void:Dataset ; void:dataDump </rovaniemi/data.ttl.gz> .\n"
            )
            self.send(200, "text/turtle", void.encode())
        elif path == "/rovaniemi/data.ttl.gz":
            dump = gzip.compress((FIXTURES / "rovaniemi-silent.ttl").read_bytes())
            self.send(200, "application/gzip", dump)
        elif path.startswith("/void-endpoint?at="):  # a VoID that offers a SPARQL endpoint only
            endpoint = unquote(path.partition("=")[2])
            void = (
                "@prefix void: <http://rdfs.org/ns/void#> .\n"
                f"<#graph> a void:Dataset ; void:sparqlEndpoint <{endpoint}> .\n"
            )
            self.send(200, "text/turtle", void.encode())
        elif path == "/endless":  # an answer that never ends
            self.send_response(200)
            self.send_header("Content-Type", "application/n-triples")
            self.end_headers()
            line = b"<https://x.example/s> <https://x.example/p> <https://x.example/o> .\n" * 1000
            try:
                while not self.stop.is_set():
                    self.wfile.write(line)
            except OSError:
                pass
        elif path == "/stall":  # headers, then 30 s of nothing
            self.send_response(200)
            self.send_header("Content-Type", "text/turtle")
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            self.stop.wait(30)
        elif path == "/silent":  # not even headers for 30 s
            self.stop.wait(30)
        elif path == "/drip":  # a valid graph, one byte a second
            self.send_response(200)
            self.send_header("Content-Type", "application/n-triples")
            self.end_headers()
            for byte in b"<https://x.example/s> <https://x.example/p> <https://x.example/o> .\n":
                if self.stop.wait(1):
                    break
                try:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                except OSError:
                    break
        elif path == "/loop":
            self.send(302, "text/plain", b"", Location="/loop")
        elif path.startswith("/hop/"):  # /hop/1 -> /hop/2 -> ... never the same URL twice
            self.send(302, "text/plain", b"", Location=f"/hop/{int(path[5:]) + 1}")
        elif path == "/picture":  # not RDF, not a page
            self.send(200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
        elif path == "/lying":  # says Turtle, is not
            self.send(200, "text/turtle", b"<html><body>Not Turtle at all</body></html>\n")
        elif path == "/bomb.nt.gz":  # 64 KB that unpack to 64 MiB
            self.send(200, "application/gzip", bomb())
        else:
            self.send(404, "text/plain", b"not here")


@contextmanager
def running() -> Iterator[str]:
    """The partner server on a free port of 127.0.0.1: its base URL; stopped on exit."""
    Partner.stop.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Partner)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        Partner.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
