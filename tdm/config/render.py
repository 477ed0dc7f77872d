"""Text renderings of a project for the CLI: the dry-run plan, Graphviz dot and listings."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

from tdm.config.project import PipelineSpec, Project
from tdm.core.effect import Effect, SecretRef
from tdm.core.pipe import Op
from tdm.core.pipeline import Pipeline

__all__ = ["list_text", "plan_text", "to_dot"]


def _description(op: Op, name: str, described: str) -> str:
    return described.removesuffix(f".named({name!r})")


def _secrets_of(op: Op) -> list[str]:
    if not isinstance(op, Effect) or not dataclasses.is_dataclass(op):
        return []
    found: list[str] = []
    for f in dataclasses.fields(op):
        value = getattr(op, f.name, None)
        if isinstance(value, SecretRef):
            found.append(value.name)
        elif f.name in ("secret", "secrets") and isinstance(value, str):
            found.append(value)
    return found


def node_details(pipeline: Pipeline) -> str:
    """The details of nodes that have some (REST calls: query, pagination, retry), as an
    indented block after ``tdm graph``'s tree; empty when no node has any."""
    plan = pipeline.plan
    lines: list[str] = []
    for i, node in enumerate(plan.nodes):
        details = getattr(node.op, "details", None)
        if callable(details):
            lines.append(f"{plan.names[i]}:")
            lines += [f"  {line}" for line in details()]
    return ("\n\n" + "\n".join(lines)) if lines else ""


def plan_text(project: Project, pipelines: Sequence[PipelineSpec] | None = None) -> str:
    """What ``tdm run --dry-run`` prints: every node and effect, secrets by name only.

    >>> from tdm.config import load_yaml
    >>> print(plan_text(load_yaml("pipelines:\\n  - name: P\\n    pipes:\\n"
    ...                            "      - {name: orders, type: input}\\n")))
    dry run of <text>: nothing is read, written, called or sent
    <BLANKLINE>
    pipeline 'P' (id p, no schedule)
      1. orders  [effect]  inputs.frame('orders')
      outputs: orders
    <BLANKLINE>
    alerts on failure: none
    state: the runtime default
    """
    chosen = list(pipelines) if pipelines is not None else list(project.pipelines)
    lines = [f"dry run of {project.source or '<text>'}: nothing is read, written, called or sent"]
    for spec in chosen:
        plan = spec.pipeline.plan
        schedule = f"schedule {spec.schedule!r}" if spec.schedule else "no schedule"
        lines += ["", f"pipeline {spec.name!r} (id {spec.pipeline_id}, {schedule})"]
        width = max(len(n) for n in plan.names)
        for i, node in enumerate(plan.nodes):
            name = plan.names[i]
            desc = _description(node.op, name, plan.descriptions[i])
            parents = [plan.names[p] for p in plan.parents[i]]
            after = f"  <- {', '.join(parents)}" if parents else ""
            secrets = _secrets_of(node.op)
            shown = f"  (secret: {', '.join(secrets)})" if secrets else ""
            kind = f"[{node.op.kind}]"
            lines.append(f"  {i + 1}. {name:<{width}}  {kind:<8}  {desc}{after}{shown}".rstrip())
            details = getattr(node.op, "details", None)
            if callable(details):
                lines += [f"       {line}" for line in details()]
        outs = ", ".join(plan.names[i] for i in plan.outputs)
        lines.append(f"  outputs: {outs}")
        if spec.secrets:
            lines.append(f"  secrets (names only): {', '.join(spec.secrets)}")
    if project.params:
        shown_params = ", ".join(f"{k}={v!r}" for k, v in sorted(project.params.items()))
        lines += ["", f"params: {shown_params}"]
    lines.append("")
    if project.alert_managers:
        lines.append("alerts on failure:")
        lines += [f"  - {a.name}: {a.describe()}" for a in project.alert_managers]
    else:
        lines.append("alerts on failure: none")
    state = project.state_manager
    lines.append(
        f"state: {state.name}: {state.describe()}" if state else "state: the runtime default"
    )
    return "\n".join(lines)


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(pipeline: Pipeline, name: str = "pipeline") -> str:
    """A Graphviz ``digraph`` of the pipeline (effects as parallelograms, outputs bold).

    >>> import tdm
    >>> print(to_dot(tdm.inputs.frame("orders"), "P"))
    digraph "P" {
      rankdir=LR;
      node [shape=box, fontname="Helvetica"];
      n0 [label="orders\\ninputs.frame('orders')", shape=parallelogram, style=bold];
    }
    """
    plan = pipeline.plan
    outputs = set(plan.outputs)
    lines = [
        f"digraph {_dot_quote(name)} {{",
        "  rankdir=LR;",
        '  node [shape=box, fontname="Helvetica"];',
    ]
    for i, node in enumerate(plan.nodes):
        node_name = plan.names[i]
        desc = _description(node.op, node_name, plan.descriptions[i])
        label = node_name if desc == node_name else f"{node_name}\n{desc}"
        attrs = [f"label={_dot_quote(label)}"]
        if node.op.kind == "effect":
            attrs.append("shape=parallelogram")
        if i in outputs:
            attrs.append("style=bold")
        lines.append(f"  n{i} [{', '.join(attrs)}];")
    for i, parents in enumerate(plan.parents):
        for p in parents:
            lines.append(f"  n{p} -> n{i};")
    lines.append("}")
    return "\n".join(lines)


def list_text(project: Project) -> str:
    """One row per pipeline: name, id, schedule, pipe count, secrets."""
    rows = [("NAME", "PIPELINE_ID", "SCHEDULE", "PIPES", "SECRETS")]
    for spec in project.pipelines:
        rows.append(
            (
                spec.name,
                spec.pipeline_id,
                spec.schedule or "-",
                str(len(spec.pipes)),
                ", ".join(spec.secrets) or "-",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(5)]
    return "\n".join(
        re.sub(r"\s+$", "", "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        for row in rows
    )
