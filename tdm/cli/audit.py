"""``tdm history``, ``ui``, ``report``, ``checkpoints`` and ``state``: what past runs left."""

from __future__ import annotations

from typing import Any

import click

from tdm.cli._app import EXIT_BAD_INPUT, _load, _scrub, cli
from tdm.errors import InputError, StateError


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
        _echo_table(
            frame, as_json, f"no schema or row-count differences between {diff[0]} and {diff[1]}"
        )
        return
    try:
        frame = state.history(pipeline, status=status, limit=limit, nodes=nodes, store=store)
    except StateError as exc:  # an unreadable store is bad input, not a failed run
        click.echo(f"StateError: {_scrub(str(exc))}", err=True)
        raise click.exceptions.Exit(EXIT_BAD_INPUT) from None
    if as_json:
        _echo_json_lines(frame, date_format="iso")
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


def _echo_json_lines(frame: Any, **options: Any) -> None:
    """One JSON object per row, a line each (``--json``)."""
    for line in frame.to_json(orient="records", lines=True, **options).splitlines():
        click.echo(line)


def _echo_table(frame: Any, as_json: bool, empty: str) -> None:
    """``frame`` as JSON lines (``--json``), else as a table, or ``empty`` when it has no rows."""
    if as_json:
        _echo_json_lines(frame)
    elif frame.empty:
        click.echo(empty)
    else:
        click.echo(frame.to_string(index=False))


def _store(state_url: str | None, secret: str | None, *, must_exist: bool = False) -> Any:
    """The audit store named by --state (None: the default one) with --secret's credentials."""
    import tdm.state as state

    if secret is not None and state_url is None:
        raise InputError("--secret names the credentials of a --state store; give --state too")
    return None if state_url is None else state.open_url(state_url, secret, must_exist=must_exist)


_STATE_HELP = (
    "Read this store: a SQLite file (*.db) or a folder URL of a file store "
    "(default: $TDM_HOME/state.db)."
)


def _read_store(state_url: str | None, secret: str | None) -> Any:
    import tdm.state as state

    return state.open_url(state_url, secret, must_exist=True)


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
    _echo_table(frame, as_json, f"no state kept for pipeline {pipeline!r}")


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
