"""The one template environment: every page, and the standalone audit file, from `templates/`.

Every template extends `base.html` (the site's layout: header, language switch, footer,
favicon, one stylesheet). The same environment renders the audit report that
`twinning-kg audit --format html` writes as a file; that file carries the stylesheet
inline (`standalone`), since it is opened without the server, which is also why the
loader reads `static/site/` next to `templates/`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from twinning_kg.web.i18n import LANGUAGES, Strings, format_date, format_number, negotiate_language

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
VARY_PAGE = "Accept, Accept-Language"


@cache
def environment() -> Environment:
    """The Jinja environment of the whole site (one per process)."""
    env = Environment(
        loader=FileSystemLoader([TEMPLATES, STATIC / "site"]),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = format_number
    env.filters["date"] = lambda value, lang="en", precision=None: format_date(value, precision, lang)
    return env


def language(request: Request) -> str:
    return negotiate_language(request.query_params.get("lang"), request.headers.get("accept-language"))


def other_language(lang: str) -> str:
    return next(code for code in LANGUAGES if code != lang)


def with_params(request: Request, **params: str) -> str:
    """This page's path and query with `params` set (the language switch keeps `?format=` etc.)."""
    query = {**request.query_params, **params}
    return f"{request.url.path}?{urlencode(query)}"


def page(
    template: str,
    lang: str,
    *,
    public: Callable[[str], str] = lambda iri: iri,
    path: str = "/",
    other_lang_href: str | None = None,
    standalone: bool = False,
    **values: Any,
) -> str:
    """A page as text: `values` plus what every page's layout uses."""
    other = other_language(lang)
    return (
        environment()
        .get_template(template)
        .render(
            s=Strings(lang),
            lang=lang,
            other_lang=other,
            other_lang_href=other_lang_href or f"{path}?lang={other}",
            path=path,
            public=public,
            standalone=standalone,
            **values,
        )
    )


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    lang: str | None = None,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page of the site in the request's language, negotiated (Vary) by type and language.

    The ETag is left to `middleware.ConditionalGet`, which ties it to the release and to
    this representation (type and language).
    """
    lang = lang or language(request)
    ctx = request.app.state.ctx
    html = page(
        template,
        lang,
        public=ctx.public,
        path=request.url.path,
        other_lang_href=with_params(request, lang=other_language(lang)),
        **values,
    )
    answer_headers = {"Vary": VARY_PAGE, "Content-Language": lang, **(headers or {})}
    return HTMLResponse(html, status_code=status, headers=answer_headers)
