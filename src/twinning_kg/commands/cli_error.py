"""`CliError`: how every command reports an expected failure (never a traceback)."""

from __future__ import annotations

import click


class CliError(click.ClickException):
    """An expected failure: printed as `error: message`, exit status `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:  # noqa: ANN001 - click's signature
        click.echo(f"error: {self.format_message()}", err=True, file=file)
