"""Attacks on the HTTP layer of the real server (a `twinning-kg serve` subprocess), raw sockets
where a client library would tidy the attack away:

- slowloris: half-sent request lines, headers and bodies, dripped bytes, idle and kept-alive
  connections are answered 408 and closed within the configured deadline, while normal
  requests keep being answered; connection caps refuse at once; thousands of half-sent
  requests leave the file descriptors bounded;
- request heads too large: 414 for long URLs (exactly at the limit still answered), 431
  for large headers;
- Host header injection: no Location and no `sd:endpoint` ever names a forged Host;
  `--allowed-host` refuses other Hosts;
- security headers on pages, errors (the protocol's own too), dumps, SPARQL results;
- HEAD on /sparql and /audit; a too-large chunked body gets the same plain-text 413 as a
  too-large Content-Length.
"""

from __future__ import annotations

import contextlib
import os
import resource
import selectors
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from rdflib import Dataset, Graph, URIRef

from conftest import ServerProcess
from sparql_support import serve
from twinning_kg.config import DEFAULT_BASE_IRI, Settings
from twinning_kg.release.builder import write_release
from twinning_kg.web.security_headers import CONTENT_SECURITY_POLICY

SD_ENDPOINT = URIRef("http://www.w3.org/ns/sparql-service-description#endpoint")
HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
MAX_BODY = 20_000


# ------------------------------------------------------------------ raw HTTP helpers


def connect(server: ServerProcess, source: str | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def read_response(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes (or `timeout` passes)."""
    sock.settimeout(timeout)
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def read_one_response(sock: socket.socket, timeout: float = 10) -> bytes:
    """One response with a Content-Length, read exactly (the connection stays open)."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    length = int(headers(data)["content-length"])
    while len(data.split(b"\r\n\r\n", 1)[1]) < length:
        data += sock.recv(65536)
    return data


def exchange(server: ServerProcess, request: bytes, timeout: float = 10) -> bytes:
    """Send `request` (as much as the server takes) and return the whole response."""
    with connect(server) as sock:
        with contextlib.suppress(OSError):  # the server may refuse and close before reading it all
            sock.sendall(request)
        return read_response(sock, timeout)


def status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def headers(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


def body(response: bytes) -> str:
    return response.split(b"\r\n\r\n", 1)[1].decode("utf-8", errors="replace")


def get(path: str, host: str = "x", extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()


def assert_normal_request_works(server: ServerProcess) -> None:
    response = httpx.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture(autouse=True, scope="module")
def _many_file_descriptors() -> None:
    """This test process opens thousands of sockets: raise its own soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@pytest.fixture(scope="module")
def hardened(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Short deadlines, a small body limit, no per-client cap (every test client is 127.0.0.1)."""
    server = serve(
        site,
        tmp_path_factory.mktemp("logs"),
        "--header-timeout", str(HEADER_TIMEOUT),
        "--body-timeout", str(BODY_TIMEOUT),
        "--max-connections", "400",
        "--max-connections-per-client", "0",
        "--max-request-bytes", str(MAX_BODY),
    )
    yield server
    server.stop()
    assert "Traceback" not in server.log()


# ------------------------------------------------------------------ slowloris


HEAD = b"GET /sparql?query=ASK%%7B%%7D HTTP/1.1\r\nHost: x\r\nX-Padding: %s\r\n\r\n" % (b"p" * 200)
# Half-sent requests as an attacker would send them, each its own way of never finishing:
# (bytes, the answer). Those the HTTP parser rejects outright get a 400 at once; all others
# are held until the header deadline and get a 408.
HALF_SENT = {
    "silent": (b"", 408),
    "partial request line": (b"GET /sparql?query=ASK", 408),
    "headers left open": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n", 408),
    "absolute-form target": (b"GET http://x/sparql HTTP/1.1\r\nHost: x\r\n", 408),
    "POST headers left open": (
        b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: application/sparql-query\r\n"
        b"Content-Length: 10\r\n",
        408,
    ),
    "one header line never ended": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 1000, 408),
    "folded header continued": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n ", 400),
    "bare LF line ends": (b"GET / HTTP/1.1\nHost: x\nX-A: 1\n", 400),
    "lower-case method": (b"get / HTTP/1.1\r\n", 400),
}
STATUS_LINE = {400: b"HTTP/1.1 400 Bad Request", 408: b"HTTP/1.1 408 Request Timeout"}


def _wait_for_answers(socks: dict[socket.socket, str], start: float, deadline: float, drip=None):  # noqa: ANN001, ANN202
    """Wait until every socket is answered or closed; (name, seconds, first line) per socket.

    `drip(sock)` is called every 0.25 s for the sockets still open, to keep sending.
    """
    selector = selectors.DefaultSelector()
    for sock in socks:
        selector.register(sock, selectors.EVENT_READ)
    done = []
    next_drip = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.05):
            sock = key.fileobj
            data = read_response(sock, timeout=2)
            done.append((socks[sock], time.monotonic() - start, data.split(b"\r\n", 1)[0]))
            selector.unregister(sock)
        if drip and time.monotonic() >= next_drip:
            for key in list(selector.get_map().values()):
                drip(key.fileobj)
            next_drip = time.monotonic() + 0.25
    left = [socks[key.fileobj] for key in selector.get_map().values()]
    selector.close()
    assert not left, f"still open after {deadline - start:.0f} s: {Counter(left)}"
    return done


def test_half_sent_requests_are_closed_at_the_header_deadline(hardened: ServerProcess) -> None:
    socks: dict[socket.socket, str] = {}
    start = time.monotonic()
    try:
        for name, (data, _status) in HALF_SENT.items():
            for _ in range(20):
                sock = connect(hardened)
                sock.sendall(data)
                socks[sock] = name
        # a kept-alive connection: one complete request, then the next one half-sent
        for _ in range(10):
            sock = connect(hardened)
            sock.sendall(HEAD)
            first = read_one_response(sock)
            assert first.startswith(b"HTTP/1.1 200"), first[:100]
            sock.sendall(b"GET /sparql HTTP/1.1\r\nHost: x\r\n")
            socks[sock] = "kept-alive, next request half-sent"
        # drip: one byte every 0.25 s, a request head that would take a minute to finish
        dripping = HEAD * 3
        offsets: dict[socket.socket, int] = {}
        for _ in range(10):
            sock = connect(hardened)
            socks[sock], offsets[sock] = "dripping one byte at a time", 0

        def drip(sock: socket.socket) -> None:
            if sock in offsets:
                with contextlib.suppress(OSError):
                    sock.send(dripping[offsets[sock] : offsets[sock] + 1])
                    offsets[sock] += 1

        opened = time.monotonic() - start
        assert opened < HEADER_TIMEOUT / 2, f"opening took {opened:.1f} s"
        assert_normal_request_works(hardened)  # while all of them are held
        answers = _wait_for_answers(socks, start, start + HEADER_TIMEOUT + 8, drip)
    finally:
        for sock in socks:
            sock.close()
    for name, seconds, first_line in answers:
        expected = HALF_SENT.get(name, (b"", 408))[1]
        assert first_line == STATUS_LINE[expected], (name, first_line)
        if expected == 400:
            assert seconds < 1, (name, round(seconds, 2))  # refused on sight
        else:  # kept-alive ones started their deadline at the second request's first byte
            assert HEADER_TIMEOUT - 0.3 <= seconds <= HEADER_TIMEOUT + 3, (name, round(seconds, 2))
    assert Counter(name for name, _, _ in answers) == Counter(socks.values())
    assert_normal_request_works(hardened)


ONE_BYTE = b"1\r\n \r\n"  # a chunk holding one space


@pytest.mark.parametrize(
    ("name", "head", "body_parts"),
    [
        ("content-length, body dripped", b"Content-Length: 100\r\n", [b"ASK"] + [b" "] * 40),
        ("content-length, no body at all", b"Content-Length: 100\r\n", []),
        ("chunked, chunks dripped", b"Transfer-Encoding: chunked\r\n", [b"3\r\nASK\r\n"] + [ONE_BYTE] * 40),
        ("chunked, chunk never finished", b"Transfer-Encoding: chunked\r\n", [b"ff\r\nASK"]),
        ("form body dripped", b"Content-Length: 100\r\n", [b"query=ASK"] + [b"+"] * 40),
    ],
)
def test_half_sent_bodies_are_closed_at_the_body_deadline(
    hardened: ServerProcess, name: str, head: bytes, body_parts: list[bytes]
) -> None:
    media = b"application/x-www-form-urlencoded" if name.startswith("form") else b"application/sparql-query"
    with connect(hardened) as sock:
        sock.sendall(b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: " + media + b"\r\n" + head + b"\r\n")
        start = time.monotonic()
        sock.setblocking(False)
        answer = b""
        for part in body_parts:  # one part every 0.25 s, stopping as soon as the server answers
            with contextlib.suppress(BlockingIOError, OSError):
                answer += sock.recv(65536)
            if answer:
                break
            with contextlib.suppress(OSError):
                sock.send(part)
            time.sleep(0.25)
        answer += read_response(sock, timeout=BODY_TIMEOUT + 5)
        seconds = time.monotonic() - start
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), (name, answer[:200])
    assert "the request body did not arrive within 2 s" in body(answer)
    assert BODY_TIMEOUT - 0.3 <= seconds <= BODY_TIMEOUT + 3, (name, round(seconds, 2))
    assert_normal_request_works(hardened)


def test_thousands_of_half_sent_requests_leave_the_descriptors_bounded(
    site: Path, tmp_path: Path
) -> None:
    """About the attack that exhausted the file descriptors (20,000 half-sent requests), at
    the default connection cap: what passes the cap is refused at once, the rest is closed at
    the deadline, the server's open files stay below the cap plus a reserve, and it answers."""
    server = serve(site, tmp_path, "--header-timeout", "3", "--max-connections-per-client", "0")
    socks: list[socket.socket] = []
    try:
        pid = server.proc.pid
        limits = Path(f"/proc/{pid}/limits").read_text()
        files = next(line for line in limits.splitlines() if line.startswith("Max open files"))
        soft, hard = files.split()[3:5]
        assert soft == hard, "the server raised its open-file soft limit to the hard limit"
        start = time.monotonic()
        for _ in range(3_000):
            sock = connect(server)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            socks.append(sock)
        opened = time.monotonic() - start
        peak_fds = len(os.listdir(f"/proc/{pid}/fd"))
        during = httpx.get(server.url + "/sparql", params={"query": "ASK {}"}, timeout=10)
        answers = Counter()
        selector = selectors.DefaultSelector()
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < start + 20:
            for key, _ in selector.select(timeout=0.1):
                answers[read_response(key.fileobj, 2).split(b"\r\n", 1)[0]] += 1
                selector.unregister(key.fileobj)
            peak_fds = max(peak_fds, len(os.listdir(f"/proc/{pid}/fd")))
        all_closed = time.monotonic() - start
        left = len(selector.get_map())
        selector.close()
        assert left == 0, f"{left} connections still open after 20 s"
        assert_normal_request_works(server)  # the attack's sockets are still open on our side
    finally:
        for sock in socks:
            sock.close()
        server.stop()
    print(f"3,000 half-sent requests: opened in {opened:.1f} s, all closed after {all_closed:.1f} s, "
          f"server peak {peak_fds} open files, answers {dict(answers)}")
    assert answers[b"HTTP/1.1 503 Service Unavailable"] >= 3_000 - 1024, answers
    assert answers[b"HTTP/1.1 408 Request Timeout"] >= 900, answers
    assert set(answers) <= {b"HTTP/1.1 503 Service Unavailable", b"HTTP/1.1 408 Request Timeout"}
    assert peak_fds < 1024 + 256, peak_fds
    assert during.status_code in (200, 503), during.status_code  # never hangs while the cap is full
    assert all_closed < 3 + opened + 5


def test_connection_caps_refuse_at_once(site: Path, tmp_path: Path) -> None:
    server = serve(
        site, tmp_path, "--max-connections", "30", "--max-connections-per-client", "10",
        "--header-timeout", "60",
    )
    held: list[socket.socket] = []
    try:
        held += [connect(server) for _ in range(10)]  # 127.0.0.1 at its cap
        time.sleep(0.3)
        start = time.monotonic()
        refused = exchange(server, get("/sparql?query=ASK%7B%7D"), timeout=5)
        assert status(refused) == 429 and time.monotonic() - start < 1
        assert "at most 10 open connections per client" in body(refused)
        assert headers(refused)["retry-after"] == "5"
        # other client addresses still get in, up to the server's cap of 30
        held += [connect(server, "127.0.0.2") for _ in range(10)]
        held += [connect(server, "127.0.0.3") for _ in range(9)]
        time.sleep(0.3)
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.4"), timeout=5) as client:
            other = client.get(server.url + "/sparql", params={"query": "ASK {}"})
        assert other.status_code == 200
        held.append(connect(server, "127.0.0.3"))  # the 30th
        time.sleep(0.3)
        with connect(server, "127.0.0.5") as sock:
            start = time.monotonic()
            full = read_response(sock, timeout=5)
        assert status(full) == 503 and time.monotonic() - start < 1
        assert "already has 30 open connections" in body(full)
        for sock in held:
            sock.close()
        held = []
        time.sleep(0.3)
        assert_normal_request_works(server)
    finally:
        for sock in held:
            sock.close()
        server.stop()


def test_a_client_that_stops_reading_is_dropped(tmp_path: Path) -> None:
    """Slow read: a response nobody reads is abandoned at the send deadline (a 20 MB file,
    far more than the kernel's socket buffers hold, so the server has to wait)."""
    size = 20_000_000
    release = tmp_path / "site"
    write_release(Dataset(), release, Settings(), extra={"big.bin": os.urandom(size)})
    server = serve(release, tmp_path, "--send-timeout", "2")
    try:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(get("/dumps/big.bin"))
            start = time.monotonic()
            time.sleep(6)  # read nothing: the server's buffers fill, it waits, then gives up
            received = len(read_response(sock, timeout=10))
            seconds = time.monotonic() - start
        assert received < size, "the server gave up before sending the whole file"
        assert seconds < 20
        assert_normal_request_works(server)
        assert "response not read" in server.log()
    finally:
        server.stop()


# ------------------------------------------------------------------ request heads too large


def _query_target(length: int) -> str:
    """`/sparql?query=...` (an ASK after a comment) exactly `length` bytes long."""
    prefix, suffix = "/sparql?query=" + quote("#"), quote("\nASK {}")
    return prefix + "x" * (length - len(prefix) - len(suffix)) + suffix


def test_url_exactly_at_the_limit_is_answered_and_one_byte_more_is_414(server: ServerProcess) -> None:
    at_limit = exchange(server, get(_query_target(65_535)))
    assert status(at_limit) == 200, at_limit[:300]
    over = exchange(server, get(_query_target(65_536)))
    assert status(over) == 414
    assert "longer than this server's limit of 65535 bytes" in body(over)
    assert "POST" in body(over)


@pytest.mark.parametrize(
    "target",
    [
        "/sparql?query=" + "x" * 70_000,  # the old bare "400 Invalid HTTP request"
        "/sparql?query=" + "%41" * 30_000,  # percent-encoded: counted as sent
        "/id/" + "a" * 70_000,  # a long path, no query
        "/?" + "a=b&" * 20_000,
        "/sparql?query=" + "x" * 2_000_000,  # refused as soon as the limit passes, not at the end
    ],
)
def test_long_urls_get_414_with_a_message(server: ServerProcess, target: str) -> None:
    response = exchange(server, get(target))
    assert status(response) == 414, response[:300]
    assert headers(response)["content-type"] == "text/plain; charset=utf-8"
    assert "414 URI Too Long" in body(response)
    assert_normal_request_works(server)


def test_headers_exactly_at_the_limit_are_answered_and_one_byte_more_is_431(server: ServerProcess) -> None:
    # header lines count as "name: value\r\n": Host: x (9 bytes) + X-Pad: ... (n + 9 bytes)
    def request(pad: int) -> bytes:
        return b"GET /sparql?query=ASK%7B%7D HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * pad + b"\r\n\r\n"

    assert status(exchange(server, request(32_768 - 18))) == 200
    over = exchange(server, request(32_768 - 17))
    assert status(over) == 431
    assert "431 Request Header Fields Too Large" in body(over)


@pytest.mark.parametrize(
    "extra",
    [
        b"X-Big: " + b"a" * 40_000 + b"\r\n",
        b"".join(b"X-%d: %s\r\n" % (i, b"v" * 30) for i in range(1_000)),
        b"X-Endless: " + b"a" * 200_000,  # never ended: refused on the bytes received
        b"Cookie: " + b"c=1; " * 10_000 + b"\r\n",
    ],
)
def test_large_headers_get_431(server: ServerProcess, extra: bytes) -> None:
    response = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n")
    assert status(response) == 431, response[:300]
    assert_normal_request_works(server)


# ------------------------------------------------------------------ Host header injection

FORGED_HOSTS = [
    "evil.example",
    "EVIL.EXAMPLE",
    "evil.example:8080",
    "evil.example:80@127.0.0.1",
    "127.0.0.1@evil.example",
    "evil.example/x",
    "evil.example.",
    "xn--evil-example.com",
]
REDIRECTING = ["/id/place/kassel", "/id/place/kassel?format=ttl", "/catalog/", "/dumps", "/dataset/kassel",
               "/void", "/.well-known/void/", "/sparql/"]


@pytest.mark.parametrize("host", FORGED_HOSTS)
def test_no_location_names_a_forged_host(server: ServerProcess, host: str) -> None:
    for path in REDIRECTING:
        for extra in ("", f"X-Forwarded-Host: {host}\r\nForwarded: host={host}\r\n"):
            response = exchange(server, get(path, host, extra))
            if status(response) == 400:
                continue  # the parser refused the Host itself
            location = headers(response).get("location", "")
            assert "evil" not in location.lower(), (path, host, location)
            assert "evil" not in body(response).lower(), (path, host)
            if 300 <= status(response) < 400:
                assert location.startswith("/"), (path, host, location)


def test_the_303_location_is_relative_and_followable(server: ServerProcess) -> None:
    response = exchange(server, get("/id/place/kassel", "evil.example"))
    assert status(response) == 303
    assert headers(response)["location"] == "/doc/place/kassel"
    absolute_form = exchange(server, b"GET http://evil.example/id/place/kassel HTTP/1.1\r\n"
                                     b"Host: evil.example\r\nConnection: close\r\n\r\n")
    assert "evil" not in headers(absolute_form).get("location", "evil")


@pytest.mark.parametrize(
    ("accept", "fmt"), [("text/turtle", "turtle"), ("application/ld+json", "json-ld"),
                        ("application/rdf+xml", "xml"), ("application/n-triples", "nt")]
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1:1", "localhost"])
def test_service_description_endpoint_never_names_a_forged_host(
    server: ServerProcess, accept: str, fmt: str, host: str
) -> None:
    response = exchange(server, get("/sparql", host, f"Accept: {accept}\r\n"))
    assert status(response) == 200
    description = response.split(b"\r\n\r\n", 1)[1]
    assert b"evil" not in description and b"127.0.0.1:1/" not in description
    graph = Graph().parse(data=description, format=fmt)
    assert set(graph.objects(None, SD_ENDPOINT)) == {URIRef(f"{DEFAULT_BASE_IRI}sparql")}


def test_service_description_names_the_address_the_request_reached(server: ServerProcess) -> None:
    """The socket's own address (and localhost on loopback) is not the client's to forge."""
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}"):
        response = exchange(server, get("/sparql", host, "Accept: text/turtle\r\n"))
        graph = Graph().parse(data=response.split(b"\r\n\r\n", 1)[1], format="turtle")
        assert set(graph.objects(None, SD_ENDPOINT)) == {URIRef(f"http://{host}/sparql")}


def test_with_a_base_url_every_location_is_under_it(local_server: ServerProcess) -> None:
    for host in FORGED_HOSTS[:3]:
        response = exchange(local_server, get("/id/place/kassel", host))
        assert headers(response)["location"] == f"{local_server.url}/doc/place/kassel"
        description = exchange(local_server, get("/sparql", host, "Accept: text/turtle\r\n"))
        graph = Graph().parse(data=description.split(b"\r\n\r\n", 1)[1], format="turtle")
        assert set(graph.objects(None, SD_ENDPOINT)) == {URIRef(f"{local_server.url}/sparql")}


def test_allowed_hosts_refuse_other_hosts(site: Path, tmp_path: Path) -> None:
    server = serve(site, tmp_path, "--allowed-host", "127.0.0.1", "--allowed-host", "twinning.example")
    try:
        assert status(exchange(server, get("/", f"127.0.0.1:{server.port}"))) == 200
        for host in ("evil.example", "twinning.example.evil.example", "eviltwinning.example"):
            response = exchange(server, get("/id/place/kassel", host))
            assert status(response) == 400, host
            assert "location" not in headers(response)
        allowed = exchange(server, get("/sparql", "twinning.example", "Accept: text/turtle\r\n"))
        graph = Graph().parse(data=allowed.split(b"\r\n\r\n", 1)[1], format="turtle")
        assert set(graph.objects(None, SD_ENDPOINT)) == {URIRef("http://twinning.example/sparql")}
        # an allowed name with a port the client made up is not an address of ours
        ported = exchange(server, get("/sparql", "twinning.example:6666", "Accept: text/turtle\r\n"))
        assert b"6666" not in ported
    finally:
        server.stop()


# ------------------------------------------------------------------ security headers

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_security_headers(response: bytes, what: str) -> None:
    found = headers(response)
    for name, value in SECURITY_HEADERS.items():
        assert found.get(name) == value, (what, name, found.get(name))
    assert "frame-ancestors 'none'" in found["content-security-policy"]


def test_security_headers_everywhere(hardened: ServerProcess) -> None:
    version_etag = httpx.get(hardened.url + "/", timeout=10).headers["etag"]
    cases = {
        "landing page": get("/"),
        "resource page": get("/doc/place/kassel"),
        "303": get("/id/place/kassel"),
        "404 page": get("/id/place/nowhere"),
        "404 route": get("/no/such/thing"),
        "405": b"DELETE /sparql HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "400 query": get("/sparql?query=SELEKT"),
        "413": b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: application/sparql-query\r\n"
        + f"Content-Length: {MAX_BODY + 1}\r\n\r\n".encode(),
        "414 (protocol)": get("/?" + "a" * 30_000),
        "431 (protocol)": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 40_000 + b"\r\n\r\n",
        "400 (parser)": b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "dump": get("/dumps/twinning-kg.ttl"),
        "gzip dump": get("/dumps/twinning-kg.ttl.gz"),
        "SPARQL results": get("/sparql?query=SELECT%20*%20%7B%3Fs%20%3Fp%20%3Fo%7D%20LIMIT%201"),
        "service description": get("/sparql", extra="Accept: text/turtle\r\n"),
        "YASGUI page": get("/sparql", extra="Accept: text/html\r\n"),
        "static file": get("/static/yasgui/yasgui.min.js"),
        "catalog": get("/catalog"),
        "304": get("/", extra=f"If-None-Match: {version_etag}\r\n"),
        "HEAD": b"HEAD /audit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    }
    for what, request in cases.items():
        response = exchange(hardened, request)
        assert_security_headers(response, what)
    with connect(hardened) as sock:  # the protocol's 408 too
        sock.sendall(b"GET / HTTP/1.1\r\n")
        assert_security_headers(read_response(sock), "408")


# ------------------------------------------------------------------ HEAD, 413 for chunked bodies


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/sparql", "text/turtle"),
        ("/sparql", "text/html"),
        ("/sparql?query=ASK%7B%7D", "application/sparql-results+json"),
        ("/sparql?query=SELECT%20*%20%7B%3Fs%20%3Fp%20%3Fo%7D%20LIMIT%203", "text/csv"),
        ("/audit", "text/html"),
        ("/audit?format=json", "*/*"),
    ],
)
def test_head_is_get_without_the_body(server: ServerProcess, path: str, accept: str) -> None:
    asked = {"Accept": accept, "Accept-Encoding": "identity"}
    got = httpx.get(server.url + path, headers=asked, timeout=30)
    head = httpx.head(server.url + path, headers=asked, timeout=30)
    assert got.status_code == head.status_code == 200, head.text
    assert head.content == b""
    for name in ("content-type", "content-length", "etag", "vary", "content-security-policy"):
        assert head.headers.get(name) == got.headers.get(name), name
    assert int(head.headers["content-length"]) == len(got.content)


def test_405_lists_head(server: ServerProcess) -> None:
    response = httpx.request("PUT", server.url + "/sparql", timeout=10)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD, POST, OPTIONS"


def _chunked(parts: list[bytes], extension: bytes = b"") -> bytes:
    return b"".join(b"%x%s\r\n%s\r\n" % (len(p), extension, p) for p in parts) + b"0\r\n\r\n"


TOO_LARGE = {
    "content-length": (b"Content-Length: %d\r\n" % (MAX_BODY + 1), b"#" * (MAX_BODY + 1)),
    "content-length, leading zeros": (b"Content-Length: 000%d\r\n" % (MAX_BODY + 1), b"#" * (MAX_BODY + 1)),
    "chunked, 10 chunks": (b"Transfer-Encoding: chunked\r\n", _chunked([b"#" * 2_500] * 10)),
    "chunked, 1-byte chunks": (b"Transfer-Encoding: chunked\r\n", _chunked([b"#"] * (MAX_BODY + 1))),
    "chunked, with extensions": (b"Transfer-Encoding: chunked\r\n", _chunked([b"#" * 5_000] * 5, b";a=b")),
    "chunked, upper-case encoding": (b"Transfer-Encoding: CHUNKED\r\n", _chunked([b"#" * 25_000])),
}


@pytest.mark.parametrize("name", sorted(TOO_LARGE))
@pytest.mark.parametrize("media", ["application/sparql-query", "application/x-www-form-urlencoded"])
def test_too_large_bodies_get_the_same_plain_413(hardened: ServerProcess, name: str, media: str) -> None:
    framing, payload = TOO_LARGE[name]
    if media.endswith("urlencoded"):
        payload = payload.replace(b"#", b"q", 1)
    request = b"POST /sparql HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n%s\r\n" % (media.encode(), framing)
    response = exchange(hardened, request + payload)
    assert status(response) == 413, (name, response[:300])
    assert headers(response)["content-type"] == "text/plain; charset=utf-8"
    assert headers(response)["connection"] == "close"
    assert body(response) == (
        f"413 Content Too Large: the request body is larger than this server's limit of {MAX_BODY} bytes\n"
    )
    assert_normal_request_works(hardened)
