"""Immutable pipelines: a DAG of nodes that is data, built with ``>>``, never run by building.

Nodes are *hash-consed*: building the same step on the same parents twice gives the very same
node object, so structural equality and hashing are O(1) per node, a sub-pipeline used twice is
one node (computed once), and nothing here recurses over the graph (a chain of 10,000 steps is
fine).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

import pandas as pd
from returns.result import Failure, Result, Success

from tdm._types import Frame
from tdm.core._names import NameMap
from tdm.core.context import RunContext
from tdm.core.pipe import VARIADIC, Op, Pipe, PipeError
from tdm.errors import ArityError, DefinitionError, DuplicateNameError

__all__ = ["ARGUMENT", "Node", "Pipeline", "Plan", "pipe"]


class _Argument(Op):
    """The hole of a source-free pipeline: the frame it is called with."""

    __slots__ = ()
    kind: ClassVar[str] = "argument"
    name = "input"
    arity = 0
    explicit_name = False

    def describe(self) -> str:
        return "<pipeline input>"

    def __repr__(self) -> str:
        return "ARGUMENT"

    def __reduce__(self) -> str:
        return "ARGUMENT"


ARGUMENT = _Argument()
"""The op of the argument node of source-free pipelines such as ``step_a >> step_b``."""

_EMPTY_NAMES = NameMap.EMPTY


class Node:
    """One node of a pipeline: an op applied to parent nodes. Build with :meth:`make`.

    Nodes are unique per (op, parents): equal structure means the same object.
    """

    __slots__ = ("__weakref__", "_hash", "has_argument", "named", "op", "parents")

    op: Op
    parents: tuple[Node, ...]
    has_argument: bool
    named: NameMap
    _hash: int

    _table: ClassVar[weakref.WeakValueDictionary[tuple[Any, ...], Node]] = (
        weakref.WeakValueDictionary()
    )
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, op: Op, parents: tuple[Node, ...], named: NameMap) -> None:
        self.op = op
        self.parents = parents
        self.has_argument = op is ARGUMENT or any(p.has_argument for p in parents)
        self._hash = hash((op, tuple(p._hash for p in parents)))
        self.named = named

    @classmethod
    def make(cls, op: Op, parents: tuple[Node, ...] = ()) -> Node:
        """The unique node for ``op`` applied to ``parents`` (checked for arity and names)."""
        _check_arity(op, len(parents))
        key = (op, tuple(map(id, parents)))
        with cls._lock:
            node = cls._table.get(key)
            if node is None:
                node = cls(op, parents, _merge_names(op, parents))
                if op.explicit_name:
                    node.named = node.named.set(op.name, node)
                cls._table[key] = node
        return node

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"<Node {self.op.describe()}>"


def _check_arity(op: Op, count: int) -> None:
    if op.arity == VARIADIC:
        if count == 0:
            raise ArityError(
                f"{op.name} combines one or more frames but was given none; "
                f"call it with its inputs, e.g. {op.name}(a, b)"
            )
        return
    if op.arity == count:
        return
    if op.arity == 0:
        raise ArityError(
            f"{op.describe()} is a source and takes no input; start a pipeline with it "
            f"(e.g. {op.describe()} >> step) instead of feeding a frame into it"
        )
    if op.arity == 1:
        raise ArityError(
            f"{op.name} takes 1 input frame but was connected to {count}; "
            f"chain it with >> instead: parent >> {op.name}(...)"
        )
    raise ArityError(
        f"{op.name} takes {op.arity} input frames but was connected to {count}; "
        f"connect all of them at once: {op.name}(...)(" + ", ".join(["p"] * op.arity) + ")"
    )


def _merge_names(op: Op, parents: tuple[Node, ...]) -> NameMap:
    """Explicit names visible from a new node; raises on two different nodes with one name."""
    if not parents:
        merged = _EMPTY_NAMES
    else:
        merged = parents[0].named
        for parent in parents[1:]:
            merged, clash = merged.merge(parent.named)
            if clash is not None:
                name, first, second = clash
                raise DuplicateNameError(_duplicate_message(name, first, second))
    if op.explicit_name:
        other = merged.get(op.name)
        if other is not None:
            raise DuplicateNameError(_duplicate_message(op.name, other, None, op))
    return merged


def _duplicate_message(name: str, first: Node, second: Node | None, op: Op | None = None) -> str:
    other = op.describe() if op is not None else second.op.describe() if second else "?"
    return (
        f"two different steps are both named {name!r}: {first.op.describe()} and {other}; "
        "give one of them another name with .named('...') (or label=...)"
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """A pipeline laid out for execution: nodes in topological order, indexed by position.

    Attributes:
        nodes: every node, parents before children.
        names: the unique display name of each node (same positions as ``nodes``).
        parents: the positions of each node's parents.
        consumers: how many children read each node's frame.
        outputs: the positions of the pipeline's outputs.
        descriptions: each node's op as text (``op.describe()``).
        children: the positions of each node's children.
    """

    nodes: tuple[Node, ...]
    names: tuple[str, ...]
    parents: tuple[tuple[int, ...], ...]
    consumers: tuple[int, ...]
    outputs: tuple[int, ...]
    descriptions: tuple[str, ...]
    children: tuple[tuple[int, ...], ...]

    def ambiguous_names(self) -> dict[str, tuple[str, ...]]:
        """Names that several auto-named nodes share, with the unique names they were given.

        ``filter_rows`` used twice without ``.named(...)`` becomes ``filter_rows`` and
        ``filter_rows_2``; looking up ``filter_rows`` would silently mean the first one.
        """
        groups: dict[str, list[str]] = {}
        for node, name in zip(self.nodes, self.names, strict=True):
            if not node.op.explicit_name:
                groups.setdefault(node.op.name, []).append(name)
        return {base: tuple(names) for base, names in groups.items() if len(names) > 1}

    def index(self, name: str) -> int:
        """The position of the node called ``name``."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no node named {name!r}; nodes are: {', '.join(self.names)}") from None


def _topological(outputs: Sequence[Node]) -> list[Node]:
    order: list[Node] = []
    seen: set[int] = set()
    for root in outputs:
        if id(root) in seen:
            continue
        stack: list[tuple[Node, int]] = [(root, 0)]
        seen.add(id(root))
        while stack:
            node, i = stack[-1]
            if i < len(node.parents):
                stack[-1] = (node, i + 1)
                parent = node.parents[i]
                if id(parent) not in seen:
                    seen.add(id(parent))
                    stack.append((parent, 0))
            else:
                stack.pop()
                order.append(node)
    return order


def _make_plan(outputs: tuple[Node, ...]) -> Plan:
    nodes = _topological(outputs)
    index = {id(n): i for i, n in enumerate(nodes)}
    taken = {n.op.name for n in nodes if n.op.explicit_name}
    names: list[str] = []
    used: set[str] = set()
    next_suffix: dict[str, int] = {}
    for node in nodes:
        name = node.op.name
        if not node.op.explicit_name and (name in taken or name in used):
            base, k = name, next_suffix.get(name, 2)
            while f"{base}_{k}" in taken or f"{base}_{k}" in used:
                k += 1
            next_suffix[base] = k + 1
            name = f"{base}_{k}"
        used.add(name)
        names.append(name)
    parents = tuple(tuple(index[id(p)] for p in n.parents) for n in nodes)
    consumers = [0] * len(nodes)
    children: list[list[int]] = [[] for _ in nodes]
    for i, ps in enumerate(parents):
        for p in ps:
            consumers[p] += 1
            children[p].append(i)
    return Plan(
        nodes=tuple(nodes),
        names=tuple(names),
        parents=parents,
        consumers=tuple(consumers),
        outputs=tuple(index[id(o)] for o in outputs),
        descriptions=tuple(n.op.describe() for n in nodes),
        children=tuple(map(tuple, children)),
    )


class Pipeline:
    """An immutable DAG of steps and effects with one or more outputs.

    Build pipelines with ``>>``, :func:`pipe`, multi-input steps such as ``join(a, b, on=...)``,
    and :meth:`Pipeline.of` for several outputs. Building runs nothing; ``tdm.run`` does.

    >>> import pandas as pd
    >>> from tdm.core.factories import transform
    >>> @transform
    ... def double(df):
    ...     return df * 2
    >>> p = double() >> double()
    >>> p == double() >> double()
    True
    >>> p(pd.DataFrame({"a": [1]})).unwrap()["a"].tolist()
    [4]
    """

    __slots__ = ("__weakref__", "_fingerprint", "_hash", "_plan", "outputs")

    outputs: tuple[Node, ...]

    def __init__(self, outputs: Sequence[Node]) -> None:
        if not outputs:
            raise DefinitionError("a pipeline needs at least one output node")
        unique = tuple(dict.fromkeys(outputs))
        if len(unique) > 1:
            _merge_names(ARGUMENT, unique)  # explicit names must agree across outputs
        self.outputs = unique
        self._hash = hash(unique)
        self._plan: Plan | None = None
        self._fingerprint: str | None = None

    # construction -------------------------------------------------------------------------
    @staticmethod
    def of(*items: Pipeline | Op) -> Pipeline:
        """Lift steps or pipelines into one pipeline whose outputs are all of theirs.

        >>> from tdm.core.inputs import Input
        >>> both = Pipeline.of(Input("a"), Input("b"))
        >>> len(both.outputs)
        2
        """
        if not items:
            return IDENTITY
        nodes: list[Node] = []
        for item in items:
            if isinstance(item, Pipeline):
                nodes.extend(item.outputs)
            elif isinstance(item, Op):
                parents = () if item.arity == 0 else (_ARG_NODE,)
                nodes.append(Node.make(item, parents))
            else:
                raise DefinitionError(
                    f"expected a step, an effect or a Pipeline, got {type(item).__name__}: "
                    f"{item!r}; wrap plain functions with @tdm.transform"
                )
        return Pipeline(nodes)

    @staticmethod
    def apply(op: Op, parents: Sequence[Pipeline | Op]) -> Pipeline:
        """A pipeline whose output is ``op`` applied to the outputs of ``parents``."""
        nodes = tuple(Pipeline.of(p).output_node for p in parents)
        return Pipeline((Node.make(op, nodes),))

    def __rshift__(self, other: Pipeline | Op) -> Pipeline:
        head = self.output_node
        if isinstance(other, Op):
            if other.arity == 0:
                _check_arity(other, 1)
            return Pipeline((Node.make(other, (head,)),))
        if isinstance(other, Pipeline):
            return other.feed(head)
        return NotImplemented

    def __rrshift__(self, other: Op) -> Pipeline:
        if isinstance(other, Op):
            return Pipeline.of(other) >> self
        return NotImplemented

    def feed(self, head: Node) -> Pipeline:
        """This pipeline with its argument (its open input) replaced by ``head``."""
        if head is _ARG_NODE:  # the identity feeds nothing: ``pipe() >> p == p`` for every p
            return self
        if not any(n.has_argument for n in self.outputs):
            raise DefinitionError(
                "cannot feed a frame into a pipeline that already starts at a source "
                f"({', '.join(self.sources())}); only source-free pipelines such as "
                "step_a >> step_b can follow >>"
            )
        mapped: dict[int, Node] = {id(_ARG_NODE): head}
        for node in self.plan.nodes:
            if not node.has_argument or id(node) in mapped:
                mapped.setdefault(id(node), node)
                continue
            parents = tuple(mapped[id(p)] for p in node.parents)
            mapped[id(node)] = Node.make(node.op, parents)
        return Pipeline(tuple(mapped[id(o)] for o in self.outputs))

    # identity -------------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline):
            return NotImplemented
        return self.outputs == other.outputs

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        # A flat encoding: unpickling a 10,000-step chain must not recurse.
        plan = self.plan
        ops = [(n.op, plan.parents[i]) for i, n in enumerate(plan.nodes)]
        return (_rebuild_pipeline, (ops, plan.outputs))

    # inspection -------------------------------------------------------------------------------
    @property
    def plan(self) -> Plan:
        """The execution layout (computed once per pipeline value)."""
        if self._plan is None:
            self._plan = _make_plan(self.outputs)
        return self._plan

    @property
    def output_node(self) -> Node:
        """The single output node; an error if the pipeline has several."""
        if len(self.outputs) != 1:
            names = ", ".join(self.plan.names[i] for i in self.plan.outputs)
            raise DefinitionError(
                f"this pipeline has {len(self.outputs)} outputs ({names}); "
                "pick one with pipeline['name'] before chaining or calling it"
            )
        return self.outputs[0]

    @property
    def is_source_free(self) -> bool:
        """True when the pipeline reads its frame from its caller (``p(df)``)."""
        return any(n.has_argument for n in self.outputs)

    def names(self) -> tuple[str, ...]:
        """Node names in execution order."""
        return self.plan.names

    def sources(self) -> list[str]:
        """Names of the nodes that take no input (sources and the argument)."""
        plan = self.plan
        return [plan.names[i] for i, n in enumerate(plan.nodes) if not n.parents]

    def inputs(self) -> list[str]:
        """Names of ``tdm.inputs.frame`` nodes: the frames ``tdm.run(inputs=...)`` must supply."""
        from tdm.core.inputs import Input

        plan = self.plan
        return [
            plan.names[i]
            for i, n in enumerate(plan.nodes)
            if isinstance(n.op, Input) or n.op is ARGUMENT
        ]

    def __getitem__(self, name: str) -> Pipeline:
        """The sub-pipeline that ends at the node called ``name`` (to preview it)."""
        return Pipeline((self.plan.nodes[self.plan.index(name)],))

    def __iter__(self) -> Iterator[str]:
        raise TypeError("a Pipeline is not iterable; use .names() or .plan.nodes")

    def __len__(self) -> int:
        return len(self.plan.nodes)

    def fingerprint(self) -> str:
        """A stable id of the pipeline's structure (the same in every process)."""
        if self._fingerprint is None:
            text = self.to_text().encode()
            self._fingerprint = hashlib.sha1(text, usedforsecurity=False).hexdigest()[:12]
        return self._fingerprint

    # pure evaluation ----------------------------------------------------------------------
    def __call__(
        self, frame: Frame, /, *, context: RunContext | None = None
    ) -> Result[Frame, PipeError]:
        """Run a source-free pipeline of pure steps on ``frame`` (no runtime, no effects)."""
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"call a pipeline on a pandas DataFrame, got {type(frame).__name__}")
        plan = self.plan
        out = self.output_node
        for node in plan.nodes:
            if not isinstance(node.op, Pipe) and node.op is not ARGUMENT:
                raise DefinitionError(
                    f"{node.op.describe()} is an effect; a pipeline with effects runs with "
                    "tdm.run(pipeline, ...), not by calling it"
                )
        values: list[Frame | None] = [None] * len(plan.nodes)
        remaining = list(plan.consumers)
        for i, node in enumerate(plan.nodes):
            if node.op is ARGUMENT:
                values[i] = frame.copy(deep=False)
                continue
            op = node.op
            assert isinstance(op, Pipe)
            ps = plan.parents[i]
            frames = tuple(_take(values, remaining, p) for p in ps)
            result = op.apply(frames, context)
            if isinstance(result, Failure):
                return Failure(result.failure().renamed(plan.names[i]))
            values[i] = result.unwrap()
        value = values[plan.nodes.index(out)]
        assert value is not None
        return Success(value)

    # display ----------------------------------------------------------------------------------
    def to_text(self) -> str:
        """An ASCII tree, outputs first, each node followed by its parents.

        >>> from tdm.core.inputs import Input
        >>> from tdm.core.factories import transform
        >>> @transform
        ... def double(df):
        ...     return df * 2
        >>> print((Input("orders") >> double()).to_text())
        double: double()
        orders: inputs.frame('orders')
        """
        return _render_text(self)

    def explain(self) -> str:
        """What a run pushes into each file read: the columns it keeps, the row filters, the
        group keys it holds as categories.

        ``tdm.run(..., optimize=False)`` runs without it; see :mod:`tdm.core.pushdown`.

        >>> from tdm.core.files import Read
        >>> import tdm.transforms as t
        >>> print((Read("orders.csv", None) >> t.select(["state", "n"])).explain())
        read_orders: columns ['n', 'state'] (others skipped)
        """
        from tdm.core.pushdown import explain

        return explain(self)

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of the pipeline (sources on the left)."""
        return _render_mermaid(self)

    def _repr_html_(self) -> str:
        """Jupyter shows the DAG as inline SVG (no Mermaid support, no system binary needed)."""
        from tdm.ui.svg import pipeline_svg

        return f"<div>{pipeline_svg(self)}</div>"

    def to_svg(self) -> str:
        """The DAG as an SVG document (what Jupyter shows); ``to_mermaid()`` for docs."""
        from tdm.ui.svg import pipeline_svg

        return pipeline_svg(self)

    def __repr__(self) -> str:
        plan = self.plan
        outs = ", ".join(plan.names[i] for i in plan.outputs)
        return f"<Pipeline {len(plan.nodes)} nodes -> {outs}>"


def _take(values: list[Frame | None], remaining: list[int], index: int) -> Frame:
    """Hand a parent's frame to one consumer; share-safe and released after the last one."""
    frame = values[index]
    assert frame is not None
    remaining[index] -= 1
    if remaining[index] == 0:
        values[index] = None
        return frame
    return frame.copy(deep=False)


def _rebuild_pipeline(ops: list[tuple[Op, tuple[int, ...]]], outputs: tuple[int, ...]) -> Pipeline:
    nodes: list[Node] = []
    for op, parents in ops:
        nodes.append(
            _ARG_NODE if op is ARGUMENT else Node.make(op, tuple(nodes[p] for p in parents))
        )
    return Pipeline(tuple(nodes[i] for i in outputs))


def _label(plan: Plan, i: int) -> str:
    return f"{plan.names[i]}: {plan.descriptions[i]}"


def _render_text(pipeline: Pipeline) -> str:
    plan = pipeline.plan
    index = {id(n): i for i, n in enumerate(plan.nodes)}
    lines: list[str] = []
    shown: set[int] = set()
    for out in plan.outputs:
        stack: list[tuple[int, str, str]] = [(out, "", "")]
        while stack:
            i, first, rest = stack.pop()
            if i in shown:
                lines.append(f"{first}{plan.names[i]} (shown above)")
                continue
            shown.add(i)
            lines.append(first + _label(plan, i))
            parents = [index[id(p)] for p in plan.nodes[i].parents]
            if len(parents) == 1:
                stack.append((parents[0], rest, rest))
            else:
                for k in reversed(range(len(parents))):
                    last = k == len(parents) - 1
                    stack.append(
                        (
                            parents[k],
                            rest + ("`-- " if last else "|-- "),
                            rest + ("    " if last else "|   "),
                        )
                    )
    return "\n".join(lines)


def _mermaid_text(text: str, limit: int = 60) -> str:
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def _render_mermaid(pipeline: Pipeline) -> str:
    plan = pipeline.plan
    lines = ["flowchart LR"]
    outputs = set(plan.outputs)
    for i, node in enumerate(plan.nodes):
        name = _mermaid_text(plan.names[i])
        desc = _mermaid_text(plan.descriptions[i])
        label = name if desc == name else f"{name}<br/><small>{desc}</small>"
        if node.op.kind == "effect" or node.op is ARGUMENT:
            shape = f'n{i}[/"{label}"/]'
        elif i in outputs:
            shape = f'n{i}(["{label}"])'
        else:
            shape = f'n{i}["{label}"]'
        lines.append("  " + shape)
    for i, ps in enumerate(plan.parents):
        for p in ps:
            lines.append(f"  n{p} --> n{i}")
    return "\n".join(lines)


_ARG_NODE = Node.make(ARGUMENT, ())
IDENTITY = Pipeline((_ARG_NODE,))

T = TypeVar("T", Pipeline, Op)


@overload
def pipe() -> Pipeline: ...


@overload
def pipe(step: T, /) -> T: ...


@overload
def pipe(first: Pipeline | Op, second: Pipeline | Op, /, *rest: Pipeline | Op) -> Pipeline: ...


def pipe(*steps: Pipeline | Op) -> Pipeline | Op:
    """Compose steps left to right: ``pipe(a, b, c) == a >> b >> c``.

    ``pipe()`` is the identity pipeline; a single argument comes back unchanged.

    >>> from tdm.core.factories import transform
    >>> @transform
    ... def double(df):
    ...     return df * 2
    >>> pipe(double(), double()) == double() >> double()
    True
    >>> pipe(double()) == double()
    True
    >>> pipe() >> (double() >> double()) == double() >> double()
    True
    """
    if not steps:
        return IDENTITY
    if len(steps) == 1:
        return steps[0]
    result = Pipeline.of(steps[0])
    for step in steps[1:]:
        result = result >> step
    return result
