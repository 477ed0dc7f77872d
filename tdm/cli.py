"""The ``tdm`` command: parse, load, run, print. Every ``TdmError`` is caught once, at the top.

Exit codes: 0 success, 1 a pipeline failed, 2 bad input (config, arguments, missing secrets).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from tdm.errors import ConfigError, DefinitionError, InputError, StateError, TdmError

# The config loader, the interpreter and pandas load inside the commands that need them, so
# ``tdm --help`` and ``tdm --version`` start in a fraction of the time.
if TYPE_CHECKING:
    from tdm.config.job import Job
    from tdm.config.project import PipelineSpec


def _scrub(text: str) -> str:
    """``text`` without known secret values (see :func:`tdm.effects.secrets.scrub`)."""
    from tdm.effects.secrets import scrub as scrub_secrets

    return scrub_secrets(text)


__all__ = ["cli", "main"]

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


# commands ------------------------------------------------------------------------------------
@cli.command()
@FILE
@PIPELINES
@PARAMS
@click.option(
    "--executor",
    type=click.Choice(["sequential", "threads", "dask"]),
    default="sequential",
    show_default=True,
    help="How ready steps are scheduled.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    default=None,
    help="Dask scheduler for --executor dask (tcp://host:8786, or 'local' for a local cluster; "
    "default: $DASK_SCHEDULER_ADDRESS).",
)
@click.option(
    "--max-workers", type=int, default=None, metavar="N", help="Threads for --executor threads."
)
@click.option(
    "--dry-run", is_flag=True, help="Print the plan (effects, secrets by name); run nothing."
)
@click.option(
    "--explain",
    is_flag=True,
    help="Print what each pipeline pushes into its file reads (columns kept, row filters); "
    "run nothing.",
)
@click.option(
    "--no-optimize",
    is_flag=True,
    help="Run the plan as written: no column pruning or filter pushdown into reads.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    envvar="TDM_LOG_FORMAT",
    is_eager=True,
    callback=_remember_format,
    help="Logs: auto is text on a terminal, JSON lines otherwise. json: everything printed is "
    "JSON (the summary one document on stdout, errors JSON lines on stderr).",
)
@click.option("--log-level", default="info", show_default=True, help="debug, info, warning, error.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Live progress per pipe (default: on a terminal).",
)
@click.option("--fail-fast", is_flag=True, help="Stop starting new steps after the first failure.")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=PATH",
    help="A CSV or Parquet file for an `input` pipe named NAME (repeatable).",
)
@click.option(
    "--show", type=int, default=0, metavar="N", help="Print the first N rows of each output."
)
@click.option(
    "--checkpoints",
    metavar="URL",
    help="Keep node outputs here (any fsspec URL) so a failed run can be resumed "
    "(default: the file's `checkpoints:` setting).",
)
@click.option(
    "--keep-checkpoints", is_flag=True, help="Keep the checkpoints after a successful run."
)
@click.option(
    "--resume",
    "resume",
    is_flag=False,
    flag_value=_LAST_FAILED,
    default=None,
    metavar="[RUN_ID]",
    help="Resume a failed run (default: the pipeline's last failed run): finished steps come "
    "from checkpoints, the rest run.",
)
@click.option(
    "--drift",
    type=click.Choice(["warn", "fail", "ignore"]),
    default=None,
    help="What a source's schema change since the last successful run does "
    "(default: the pipeline's `drift:`, else warn).",
)
@STATE
@STATE_SECRET
@click.option(
    "--require-audit",
    is_flag=True,
    help="Exit 1 when a run's audit record was not saved (even if the run succeeded).",
)
def run(
    file: str,
    pipelines: tuple[str, ...],
    params: tuple[str, ...],
    executor: str,
    scheduler: str | None,
    max_workers: int | None,
    dry_run: bool,
    explain: bool,
    no_optimize: bool,
    log_format: str,
    log_level: str,
    progress: bool | None,
    fail_fast: bool,
    inputs: tuple[str, ...],
    show: int,
    checkpoints: str | None,
    keep_checkpoints: bool,
    resume: str | None,
    drift: str | None,
    state_url: str | None,
    state_secret: str | None,
    require_audit: bool,
) -> None:
    """Run the pipelines of FILE (all, or those named with --pipeline)."""
    import tdm
    from tdm.config.job import LogSettings

    as_json = log_format == "json"
    if as_json:  # before loading: warnings while loading are JSON lines too
        LogSettings(format="json", level=log_level).apply()
    job = _load(file, params, state_url, state_secret)
    if dry_run:
        from tdm.config.render import plan_text

        text = plan_text(job.project, job.select(pipelines))
        click.echo(json.dumps({"dry_run": True, "plan": text}) if as_json else text)
        return
    if explain:
        plans = {spec.name: spec.pipeline.explain() for spec in job.select(pipelines)}
        lines = [f"{name}:\n  " + text.replace("\n", "\n  ") for name, text in plans.items()]
        click.echo(json.dumps({"explain": plans}) if as_json else "\n".join(lines))
        return
    if progress is None or as_json:
        progress = sys.stderr.isatty() and not as_json
    source = click.get_current_context().get_parameter_source("log_level")
    if progress and source is click.core.ParameterSource.DEFAULT:
        log_level = "warning"  # the live table is the display; --log-level info brings logs back
    LogSettings(format=log_format, level=log_level).apply()  # type: ignore[arg-type]
    failed: list[str] = []
    records: list[dict[str, Any]] = []
    unaudited: list[str] = []
    for spec, report in job.runs(
        pipelines,
        inputs=_parse_inputs(inputs),
        executor=executor,
        scheduler=scheduler,
        max_workers=max_workers,
        fail_fast=fail_fast,
        progress=progress,
        checkpoints=checkpoints,
        keep_checkpoints=keep_checkpoints,
        resume=resume,
        drift=drift,  # type: ignore[arg-type]
        optimize=not no_optimize,
    ):
        if as_json:
            from tdm.interpreter.summary import run_record

            records.append(run_record(spec.name, report, show=show))
        else:
            click.echo(_summary(spec, report, show, table_shown=bool(progress)))
        if report.status is not tdm.Status.SUCCESS:
            failed.append(f"{spec.name!r}: {_scrub(str(report.error))}")
        if report.audit_saved is not True:
            unaudited.append(f"{spec.name!r} (run {report.run_id})")
    if as_json:
        from tdm.interpreter.summary import run_document

        click.echo(run_document(records))
    if require_audit and unaudited:
        click.echo(
            "StateError: the audit record of pipeline "
            + ", ".join(unaudited)
            + " was not saved, and --require-audit asks for every run to be recorded "
            "(the reason is in the summary above; the record is in the ERROR log)",
            err=True,
        )
        if not failed:
            raise click.exceptions.Exit(EXIT_FAILED)
    if failed:
        where = "the summary" if as_json else "the per-pipe report above"
        message = "; ".join(f"pipeline {f}" for f in failed) + f" (see {where})"
        _fail(click.get_current_context(), "RunError", message, EXIT_FAILED)


def _parse_inputs(items: Sequence[str]) -> dict[str, str]:
    paths: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--input expects NAME=PATH, got {item!r}")
        paths[name] = path
    return paths


def _summary(spec: PipelineSpec, report: Any, show: int, *, table_shown: bool = False) -> str:
    """The run's summary; after a live table (``table_shown``) only what it did not show:
    the outcome, failures with their errors, drift, hook failures and outputs."""
    took = f"{report.duration_s:.2f} s, " if report.duration_s is not None else ""
    resumed = f", resumed {report.resumed_from}" if report.resumed_from else ""
    lines = [f"pipeline {spec.name!r}: {report.status.value} ({took}run {report.run_id}{resumed})"]
    lines += [f"  drift: {_scrub(d)}" for d in report.drift]
    rows = list(report.nodes.values())
    width = max(len(r.name) for r in rows)
    for record in rows:
        if table_shown and record.status.value != "FAILURE":
            continue
        count = "" if record.rows_out is None else f"{record.rows_out} rows"
        took = "" if record.duration_s is None else f"{record.duration_s:.3f} s"
        status = "RESTORED" if record.restored else record.status.value
        line = f"  {status:<8} {record.name:<{width}}  {count:>10}  {took:>9}"
        if record.error is not None and record.status.value == "FAILURE":
            line += f"\n           {_scrub(str(record.error))}"
        lines.append(line.rstrip())
    if report.hook_errors:
        lines.append("  not done (the run's status above stands):")
        lines += [f"    {_hook_failure(text)}" for text in report.hook_errors]
    if show > 0:
        for name, frame in report.outputs.items():
            lines += [f"  output {name!r}:", frame.head(show).to_string(index=False)]
    return "\n".join(lines)


def _hook_failure(text: str) -> str:
    """One line of the summary for a hook failure, saying what was not done."""
    text = _scrub(text)
    if text.startswith("audit record"):
        return f"AUDIT RECORD NOT SAVED: {text}"
    if text.startswith("alert via"):
        return f"ALERT NOT SENT: {text}"
    return f"HOOK FAILED: {text}"


@cli.command()
@FILE
@PARAMS
@click.option(
    "--secrets/--no-secrets",
    "check_secrets",
    default=True,
    show_default=True,
    help="Also check that every referenced secret exists (names only).",
)
def validate(file: str, params: tuple[str, ...], check_secrets: bool) -> None:
    """Check FILE: syntax, types, parents, config and secrets. Runs nothing."""
    job = _load(file, params)
    if check_secrets:
        job.validate()
    names = ", ".join(job.names())
    click.echo(f"OK: {file}: {len(names.split(', '))} pipeline(s): {names}")


@cli.command()
@FILE
@PIPELINES
@PARAMS
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "mermaid", "dot"]),
    default="text",
    show_default=True,
    help="text (a tree), mermaid (a flowchart) or dot (Graphviz).",
)
def graph(file: str, pipelines: tuple[str, ...], params: tuple[str, ...], fmt: str) -> None:
    """Draw the pipelines of FILE."""
    from tdm.config.render import to_dot

    parts = []
    for spec in _load(file, params).select(pipelines):
        if fmt == "dot":
            parts.append(to_dot(spec.pipeline, spec.name))
        elif fmt == "mermaid":
            parts.append(f"%% {spec.name}\n{spec.pipeline.to_mermaid()}")
        else:
            from tdm.config.render import node_details

            parts.append(f"# {spec.name}\n{spec.pipeline.to_text()}{node_details(spec.pipeline)}")
    click.echo("\n\n".join(parts))


@cli.command(name="list")
@FILE
@PARAMS
def list_(file: str, params: tuple[str, ...]) -> None:
    """List the pipelines of FILE with their ids, schedules and secrets."""
    from tdm.config.render import list_text

    click.echo(list_text(_load(file, params).project))


@cli.command()
@click.option("--pipeline", "pipeline", help="Only runs of this pipeline (id or name).")
@click.option(
    "--status", type=click.Choice(["SUCCESS", "FAILURE", "RUNNING"], case_sensitive=False)
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--nodes", is_flag=True, help="One row per node of the selected runs.")
@click.option(
    "--state",
    "state_url",
    help="Read this store: a SQLite file (*.db) or a folder URL of a file store "
    "(default: $TDM_HOME/state.db).",
)
@click.option(
    "--secret",
    metavar="NAME",
    help="The secret whose keys are the --state store's storage options (credentials).",
)
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
@click.option(
    "--diff",
    nargs=2,
    metavar="RUN_A RUN_B",
    default=None,
    help="Schema and row-count differences per node between two runs.",
)
def history(
    pipeline: str | None,
    status: str | None,
    limit: int,
    nodes: bool,
    state_url: str | None,
    secret: str | None,
    as_json: bool,
    diff: tuple[str, str] | None,
) -> None:
    """Show past runs from the audit trail, newest first."""
    import tdm.state as state

    store = _store(state_url, secret)
    if diff:
        try:
            frame = state.diff(diff[0], diff[1], store=store)
        except KeyError as exc:
            raise InputError(str(exc.args[0])) from None
        if as_json:
            for line in frame.to_json(orient="records", lines=True).splitlines():
                click.echo(line)
        elif frame.empty:
            click.echo(f"no schema or row-count differences between {diff[0]} and {diff[1]}")
        else:
            click.echo(frame.to_string(index=False))
        return
    try:
        frame = state.history(pipeline, status=status, limit=limit, nodes=nodes, store=store)
    except StateError as exc:  # an unreadable store is bad input, not a failed run
        click.echo(f"StateError: {_scrub(str(exc))}", err=True)
        raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        for line in frame.to_json(orient="records", lines=True, date_format="iso").splitlines():
            click.echo(line)
        return
    if frame.empty:
        click.echo("no runs recorded" + (f" for {pipeline!r}" if pipeline else ""))
        return
    node_columns = ["run_id", "node", "status", "started_at", "duration_s", "rows_in", "rows_out"]
    run_columns = ["run_id", "pipeline_id", "status", "started_at", "duration_s", "nodes"]
    columns = (node_columns if nodes else [*run_columns, "failed", "rows_out"]) + ["error"]
    for extra in ("resumed_from", "drift"):
        if not nodes and frame[extra].notna().any():
            columns.insert(-1, extra)
    shown = frame[columns].copy()
    for text in ("error", "drift", "resumed_from"):
        if text in shown:
            shown[text] = shown[text].fillna("").str.slice(0, 60)
    shown["duration_s"] = shown["duration_s"].round(3)
    click.echo(shown.to_string(index=False))


def _store(state_url: str | None, secret: str | None, *, must_exist: bool = False) -> Any:
    """The audit store named by --state (None: the default one) with --secret's credentials."""
    import tdm.state as state

    if secret is not None and state_url is None:
        raise InputError("--secret names the credentials of a --state store; give --state too")
    if state_url is None:
        return None
    is_db = state_url.endswith((".db", ".sqlite", ".sqlite3")) and "://" not in state_url
    if is_db and must_exist and not Path(state_url).expanduser().is_file():
        raise InputError(f"--state {state_url}: no such audit database (a *.db file)")
    return state.sqlite(state_url) if is_db else state.files(state_url, secret=secret)


_STATE_HELP = (
    "Read this store: a SQLite file (*.db) or a folder URL of a file store "
    "(default: $TDM_HOME/state.db)."
)


def _read_store(state_url: str | None, secret: str | None) -> Any:
    store = _store(state_url, secret, must_exist=True)
    if store is None:
        from tdm.interpreter.runtime import Runtime

        store = Runtime.default().state
    return store


@cli.command()
@click.option("--state", "state_url", help=_STATE_HELP)
@click.option("--secret", metavar="NAME", help="The secret holding the --state store's options.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="TDM_UI_TOKEN",
    help="Require this token on every request (needed to listen beyond this machine).",
)
def ui(state_url: str | None, secret: str | None, host: str, port: int, token: str | None) -> None:
    """Browse the audit trail in a local, read-only web page (needs tdm-pipelines[ui])."""
    try:
        from tdm.ui.app import check_bind, serve
    except ImportError as exc:
        raise InputError(
            f"tdm ui needs starlette and uvicorn: pip install 'tdm-pipelines[ui]' ({exc})"
        ) from None
    check_bind(host, token)
    serve(_read_store(state_url, secret), host=host, port=port, token=token, echo=click.echo)


@cli.command()
@click.option(
    "--html",
    "path",
    required=True,
    type=click.Path(dir_okay=False, writable=True),
    help="Write the report to this HTML file.",
)
@click.option("--run", "run_id", help="Only this run (its id).")
@click.option("--pipeline", help="This pipeline: its runs over time and its recent runs.")
@click.option("--state", "state_url", help=_STATE_HELP)
@click.option("--secret", metavar="NAME", help="The secret holding the --state store's options.")
def report(
    path: str, run_id: str | None, pipeline: str | None, state_url: str | None, secret: str | None
) -> None:
    """Write the run browser's pages as one self-contained HTML file."""
    from tdm.ui.report import write_report

    written = write_report(path, _read_store(state_url, secret), run=run_id, pipeline=pipeline)
    click.echo(f"wrote {written}")


STORE_URL = click.option(
    "--state",
    "state_url",
    help="The store: a SQLite file (*.db) or a folder URL of a file store "
    "(default: $TDM_HOME/state.db).",
)
STORE_SECRET = click.option(
    "--secret",
    metavar="NAME",
    help="The secret whose keys are the --state store's storage options (credentials).",
)


@cli.group(name="checkpoints")
def checkpoints_group() -> None:
    """Node outputs kept for resuming failed runs."""


@checkpoints_group.command(name="prune")
@click.option("--older-than", "older_than", required=True, metavar="AGE", help="e.g. 7d, 12h, 30m.")
@click.option(
    "--checkpoints",
    "url",
    metavar="URL",
    help="The checkpoint location (default: the `checkpoints:` of --file).",
)
@click.option("--file", "file", type=click.Path(dir_okay=False), help="A pipeline YAML file.")
def checkpoints_prune(older_than: str, url: str | None, file: str | None) -> None:
    """Remove checkpoints older than AGE."""
    from tdm.checkpoints import prune

    if url is None and file is not None:
        url = _load(file, ()).project.checkpoints.get("url")
    if not url:
        raise InputError("give the location: --checkpoints URL (or --file with `checkpoints:`)")
    try:
        gone = prune(url, older_than=older_than)
    except ValueError as exc:
        raise InputError(f"--older-than: {exc}") from None
    click.echo(f"removed {len(gone)} checkpoint file(s) older than {older_than} from {url}")


@cli.group(name="state")
def state_group() -> None:
    """What pipelines remember between runs (incremental cursors)."""


@state_group.command(name="show")
@click.argument("pipeline")
@STORE_URL
@STORE_SECRET
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
def state_show(pipeline: str, state_url: str | None, secret: str | None, as_json: bool) -> None:
    """Show the cursors PIPELINE (its id) keeps, one per node."""
    import tdm.state as state

    frame = state.show(pipeline, store=_store(state_url, secret, must_exist=True))
    if as_json:
        for line in frame.to_json(orient="records", lines=True).splitlines():
            click.echo(line)
    elif frame.empty:
        click.echo(f"no state kept for pipeline {pipeline!r}")
    else:
        click.echo(frame.to_string(index=False))


@state_group.command(name="reset")
@click.argument("pipeline")
@click.option("--node", help="Reset only this node's cursor.")
@STORE_URL
@STORE_SECRET
def state_reset(pipeline: str, node: str | None, state_url: str | None, secret: str | None) -> None:
    """Forget PIPELINE's cursors (all, or one --node): its next run reads from the start."""
    import tdm.state as state

    try:
        gone = state.reset(pipeline, node=node, store=_store(state_url, secret, must_exist=True))
    except KeyError as exc:
        raise InputError(str(exc.args[0])) from None
    if gone:
        click.echo(f"reset {pipeline}: {', '.join(gone)}")
    else:
        click.echo(f"no state kept for pipeline {pipeline!r}")


@cli.command()
@click.option(
    "--kind",
    type=click.Choice(["pipe", "alert", "state"]),
    default="pipe",
    show_default=True,
    help="Which types to list.",
)
def types(kind: Literal["pipe", "alert", "state"]) -> None:
    """List the type names YAML may use (built-ins, original aliases, plugins)."""
    from tdm.config.registry import default_registry

    rows = [("TYPE", "FACTORY", "ORIGIN", "AVAILABLE"), *default_registry().table(kind)]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for row in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    click.echo("\nYour own pipes: type: package.module:factory (a @tdm.transform function).")


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Write into a non-empty folder (overwrites templates).")
def init(directory: str, force: bool) -> None:
    """Create a new tdm project in DIRECTORY (default: here) that runs out of the box."""
    from tdm.config.scaffold import package_name, scaffold

    written = scaffold(directory, force=force)
    click.echo(f"created {len(written)} files in {directory}:")
    for path in written:
        click.echo(f"  {path.relative_to(directory)}")
    click.echo(
        f"\nnext:\n  cd {directory}\n  tdm run pipelines/example.yml\n"
        f"  (your pipes live in {package_name(directory)}/pipes.py)"
    )


@cli.command()
@click.argument("target", type=click.Choice(["argo", "cronjob", "dockerfile"]))
@FILE
@PIPELINES
@PARAMS
@click.option("--image", help="Container image (default: deploy.image in the file).")
@click.option("--namespace", help="Kubernetes namespace (default: deploy.namespace).")
@click.option(
    "--path",
    "path_in_image",
    help="FILE's path inside the image (default: FILE as given).",
)
@click.option(
    "--requests",
    metavar="cpu=500m,memory=1Gi",
    help="Resource requests of the container (default: deploy.resources.requests).",
)
@click.option(
    "--limits",
    metavar="cpu=1,memory=2Gi",
    help="Resource limits of the container (default: deploy.resources.limits).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one `deploy:` setting, e.g. time_zone=Europe/Berlin or "
    "active_deadline_seconds=3600 (repeatable; see the README).",
)
@STATE
@STATE_SECRET
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the manifests (or the Dockerfile) to this file (default: print them).",
)
def deploy(
    target: str,
    file: str,
    pipelines: tuple[str, ...],
    params: tuple[str, ...],
    image: str | None,
    namespace: str | None,
    path_in_image: str | None,
    requests: str | None,
    limits: str | None,
    settings: tuple[str, ...],
    state_url: str | None,
    state_secret: str | None,
    output: str | None,
) -> None:
    """Write Argo CronWorkflow or Kubernetes CronJob manifests for FILE's scheduled pipelines,
    or a Dockerfile that builds FILE's project into an image.

    Warns (on stderr) about what would fail or be lost in a pod, e.g. an audit trail kept in
    the container: pass --state s3://bucket/tdm-audit --state-secret S3 for a remote one.
    """
    from tdm.config.deploy import deployment, overrides_from_cli

    values = _parse_params(params)
    project = _load(file, params, state_url, state_secret).project
    if target == "dockerfile":
        from tdm.config.image import dockerfile

        _write(output, dockerfile(file), "the Dockerfile")
        return
    plan = deployment(
        project,
        kind="argo" if target == "argo" else "cronjob",
        file=path_in_image or file,
        image=image,
        namespace=namespace,
        pipelines=pipelines,
        params={k: str(v) for k, v in values.items()},
        overrides=overrides_from_cli(settings, requests=requests, limits=limits),
        state=(state_url, state_secret) if state_url else None,
    )
    for warning in plan.warnings:
        click.echo(f"Warning: {warning}", err=True)
    _write(output, plan.render(), f"{len(plan.manifests)} manifest(s)")


def _write(output: str | None, text: str, what: str) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
        click.echo(f"wrote {what} to {output}")
    else:
        click.echo(text, nl=False)
