"""``tdm types``, ``init`` and ``deploy``: starting a project and shipping it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import click

from tdm.cli._app import FILE, PARAMS, PIPELINES, STATE, STATE_SECRET, _load, _parse_params, cli


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
