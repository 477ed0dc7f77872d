"""The ``tdm`` group, its error handling and the options and helpers its commands share.

Every ``TdmError`` is caught once, here, and printed as ``Kind: message`` (or one JSON line).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

from tdm.errors import ConfigError, DefinitionError, InputError, TdmError

# The config loader, the interpreter and pandas load inside the commands that need them, so
# ``tdm --help`` and ``tdm --version`` start in a fraction of the time.
if TYPE_CHECKING:
    from tdm.config.job import Job


def _scrub(text: str) -> str:
    """``text`` without known secret values (see :func:`tdm.effects.secrets.scrub`)."""
    from tdm.effects.secrets import scrub as scrub_secrets

    return scrub_secrets(text)


EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _exit_code(exc: TdmError) -> int:
    return EXIT_BAD_INPUT if isinstance(exc, ConfigError | DefinitionError | InputError) else 1


class _TdmGroup(click.Group):
    """Prints ``Kind: message`` for tdm's errors (never a traceback) and sets the exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TdmError as exc:
            _fail(ctx, type(exc).__name__, str(exc), _exit_code(exc))
        except click.exceptions.ClickException as exc:
            if not _json_output(ctx):
                raise
            _fail(ctx, type(exc).__name__, exc.format_message(), exc.exit_code)
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            _fail(ctx, "Interrupted", "interrupted", 130, plain="Interrupted")
        except Exception as exc:
            if os.environ.get("TDM_DEBUG"):
                raise
            message = (
                f"{type(exc).__name__}: {exc} (a bug in tdm or a plugin; rerun with "
                "TDM_DEBUG=1 for the traceback and report it)"
            )
            _fail(ctx, "InternalError", message, EXIT_FAILED)


def _json_output(ctx: click.Context) -> bool:
    """Whether this invocation prints JSON (``--log-format json`` or ``TDM_LOG_FORMAT=json``)."""
    chosen = ctx.meta.get("tdm.log_format") or os.environ.get("TDM_LOG_FORMAT", "")
    return str(chosen).lower() == "json"


def _remember_format(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.meta["tdm.log_format"] = value
    return value


def _fail(ctx: click.Context, kind: str, message: str, code: int, *, plain: str = "") -> NoReturn:
    """Print one error (``Kind: message``, or a JSON line) on stderr and exit with ``code``."""
    if _json_output(ctx):
        from tdm.interpreter.summary import error_line

        click.echo(error_line(kind, message, exit_code=code), err=True)
    else:
        click.echo(plain or f"{kind}: {_scrub(message)}", err=True)
    raise click.exceptions.Exit(code) from None


def _version() -> str:
    from tdm import __version__

    return __version__


@click.group(
    cls=_TdmGroup,
    context_settings={
        "help_option_names": ["-h", "--help"],
        "terminal_width": 100,
        "max_content_width": 100,
    },
)
@click.version_option(_version(), "--version", prog_name="tdm", message="%(prog)s %(version)s")
def cli() -> None:
    """tdm: composable data pipelines. Run, check, draw and deploy pipeline YAML files."""


def main(args: Sequence[str] | None = None) -> None:
    """The console script ``tdm``."""
    cli.main(args=list(args) if args is not None else None, prog_name="tdm")


# shared helpers -----------------------------------------------------------------------------
def _parse_params(values: Sequence[str]) -> dict[str, Any]:
    import yaml

    params: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param expects NAME=VALUE, got {item!r}")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        params[key.strip()] = value if isinstance(value, str | int | float | bool) else raw
    return params


def _load(
    file: str,
    params: tuple[str, ...],
    state_url: str | None = None,
    state_secret: str | None = None,
) -> Job:
    import tdm

    if state_url is None and state_secret is not None:
        raise InputError("--state-secret names the credentials of a --state store; add --state")
    state = (state_url, state_secret) if state_url is not None else None
    return tdm.load(file, params=_parse_params(params), state=state)


_LAST_FAILED = "\x00last-failed"  # tdm.config.job.LAST_FAILED, without importing the loader

FILE = click.argument("file", type=click.Path(dir_okay=False))
PARAMS = click.option(
    "--param",
    "-P",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for ${params.NAME} (repeatable); also passed to the run.",
)
STATE = click.option(
    "--state",
    "state_url",
    metavar="URL",
    help="The audit store for the runs: a folder URL (s3://bucket/tdm-audit, az://...) or a "
    "SQLite file (*.db); replaces the file's state_manager.",
)
STATE_SECRET = click.option(
    "--state-secret",
    metavar="NAME",
    help="The secret whose keys are the --state store's storage options (credentials).",
)


PIPELINES = click.option(
    "--pipeline",
    "-p",
    "pipelines",
    multiple=True,
    metavar="NAME",
    help="Only this pipeline (repeatable; default: all in the file).",
)
