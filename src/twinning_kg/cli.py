"""The `twinning-kg` command line.

Each command lives in its own module under `twinning_kg.commands` and exposes a
click object named `command`; this module only collects them, so commands can grow
independently. Errors are printed as messages: `commands.cli_error.CliError` (and
click's own usage errors) never reach the user as tracebacks.
"""

from __future__ import annotations

import sys

import click

from twinning_kg import __version__
from twinning_kg.commands import (
    audit,
    build,
    check_links,
    importer,
    new_city,
    publish,
    refresh_partners,
    serve,
    validate,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twinning-kg")
def cli() -> None:
    """Kassel's town twinning as linked open data: build, validate, serve."""


for _module in (build, validate, serve, importer, publish, audit, check_links, new_city, refresh_partners):
    cli.add_command(_module.command)


def main() -> None:
    """Console entry point: never a traceback for an expected error or Ctrl-C."""
    try:
        # Without standalone mode click returns `ctx.exit(code)` codes instead of exiting.
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
