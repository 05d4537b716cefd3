"""`--contact-name`, `--contact-email`, `--contact-url`: who answers for a deployment.

Shared by every command that writes a release (`build`, `import …`): the values become the
catalog's `dcat:contactPoint` (docs/publication.md). Each can also come from the
environment (`TWINNING_KG_CONTACT_NAME`, `…_EMAIL`, `…_URL`), so `make serve` and a
deployment's service file set them once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

_OPTIONS = (
    click.option("--contact-name", envvar="TWINNING_KG_CONTACT_NAME", show_envvar=True, metavar="NAME",
                 help="Who runs this deployment (the catalog contact's vcard:fn)."),
    click.option("--contact-email", envvar="TWINNING_KG_CONTACT_EMAIL", show_envvar=True, metavar="ADDRESS",
                 help="E-mail address that answers for this deployment (vcard:hasEmail)."),
    click.option("--contact-url", envvar="TWINNING_KG_CONTACT_URL", show_envvar=True, metavar="URL",
                 help="Contact web page or tracker (vcard:hasURL; default: this server's /about page)."),
)


def contact_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add the three options; the command receives them as one `contact` dict of Settings fields."""

    @functools.wraps(func)
    def wrapper(*args: Any, contact_name: str | None = None, contact_email: str | None = None,
                contact_url: str | None = None, **kwargs: Any) -> Any:
        contact = {"contact_name": contact_name or None, "contact_email": contact_email or None,
                   "contact_url": contact_url or None}
        return func(*args, contact=contact, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper
