"""``tdm run``, ``validate``, ``graph`` and ``list``: a pipeline file, loaded as a Job, used."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from tdm.cli._app import (
    _LAST_FAILED,
    EXIT_FAILED,
    FILE,
    PARAMS,
    PIPELINES,
    STATE,
    STATE_SECRET,
    _fail,
    _load,
    _remember_format,
    _scrub,
    cli,
)
from tdm.errors import ConfigError

if TYPE_CHECKING:
    from tdm.config.project import PipelineSpec


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
