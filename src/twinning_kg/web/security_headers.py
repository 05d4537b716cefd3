"""Security headers on every response: pages, errors, dumps, SPARQL results, static files.

Why each one:

- `Content-Security-Policy`: our pages load only our own scripts, styles and images (YASGUI
  and the map are vendored under /static), so an injected `<script>` or a stray remote
  asset has nowhere to load from; `connect-src 'self'` keeps YASGUI's queries on this
  endpoint; `frame-ancestors 'none'` forbids framing (clickjacking); `base-uri 'none'`
  and `form-action 'self'` close the last ways to send a page's links elsewhere.
  YASGUI needs no `unsafe-inline` or `unsafe-eval`: its page script and styles are
  static files, and the two `<style>` elements its table's column resizer inserts are
  allowed by their hashes (`YASGUI_STYLE_HASHES`) rather than by `unsafe-inline`
  (tests/test_browser.py checks YASGUI runs a query with no CSP violation).
- `X-Frame-Options: DENY`: the same for browsers that predate `frame-ancestors`.
- `X-Content-Type-Options: nosniff`: a dump or a SPARQL result is never sniffed into
  HTML or script, whatever text a query puts in it.
- `Referrer-Policy: no-referrer`: following a link to Wikidata or a source does not
  tell the other site which page (or which query in a URL) the reader came from.

One list (`HEADERS`) is used by the ASGI middleware and by the HTTP protocol's own
refusals (408, 414, 431, 503 in `web.protocol`), so no response goes out without them.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The fixed style sheets YASR's column resizer (bundled in yasgui.min.js 4.2.28) inserts as
# <style> elements: its grip rules when a result table is drawn, and the drag cursor
# (`*{cursor:col-resize!important}`) while a column is resized. tests/test_security_headers
# recomputes both from the vendored bundle, so a YASGUI upgrade cannot silently break them.
YASGUI_STYLE_HASHES = (
    "'sha256-zCK2EVMoPc04mRF/g5CotUvxbJPWS+8V0b+s9ptqQIk='",
    "'sha256-c0O6TmFAkgpNbHxKAa1BrveWHHopjEtC47i0PzMudxg='",
)
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' " + " ".join(YASGUI_STYLE_HASHES),
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
)
_NAMES = {name for name, _ in HEADERS}


class SecurityHeaders:
    """Adds `HEADERS` to every HTTP response; a header a route set itself is kept as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers} & _NAMES
                headers += [(name, value) for name, value in HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
