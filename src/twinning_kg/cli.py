"""The `twinning-kg` command line.

Each command lives in its own module under `twinning_kg.commands` and exposes a
click object named `command`; this module only collects them, so commands can grow
independently. Errors are printed as messages: `CliError` (and click's own usage
errors) never reach the user as tracebacks.
"""

from __future__ import annotations

import importlib
import sys

import click

from twinning_kg import __version__

# module name under twinning_kg.commands -> registered by its command's own name
COMMAND_MODULES = (
    "build",
    "validate",
    "serve",
    "importer",
    "publish",
    "audit",
    "check_links",
)


class CliError(click.ClickException):
    """An expected failure: printed as `error: message`, exit status `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="twinning-kg")
def cli() -> None:
    """Kassel's town twinning as linked open data: build, validate, serve."""


for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(f"twinning_kg.commands.{_name}")
    except ModuleNotFoundError as exc:  # a command not written yet must not break the others
        if exc.name != f"twinning_kg.commands.{_name}":
            raise
        continue
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
