"""A persistent (immutable, structure-sharing) map from step names to nodes.

Every pipeline node knows the explicit step names above it, so that two different steps with one
name are caught when the graph is built. A plain ``dict`` per node copies all the names above it:
a chain of n named steps then costs O(n²) time and memory (16,000 YAML pipes took 3.8 GB). This
hash trie shares everything but the path it changes: adding a name costs O(log n), and merging
two maps that grew from a common ancestor skips the subtrees they still share.

>>> a = NameMap.EMPTY.set("x", 1).set("y", 2)
>>> b = a.set("z", 3)
>>> a.get("z") is None, b.get("z"), len(b)
(True, 3, 3)
>>> merged, clash = a.merge(NameMap.EMPTY.set("w", 4))
>>> sorted(merged.items()), clash
([('w', 4), ('x', 1), ('y', 2)], None)
>>> a.merge(NameMap.EMPTY.set("x", 9))[1]
('x', 1, 9)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

__all__ = ["NameMap"]

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1
_MAX_SHIFT = 64  # below this every key shares its hash: a bucket of leaves

Clash = tuple[str, Any, Any]


class _Leaf:
    __slots__ = ("hash", "key", "value")

    def __init__(self, key: str, value: Any, hash_: int) -> None:
        self.key, self.value, self.hash = key, value, hash_


class _Bucket:
    """Leaves whose hashes are equal in every bit (only past ``_MAX_SHIFT``)."""

    __slots__ = ("leaves",)

    def __init__(self, leaves: tuple[_Leaf, ...]) -> None:
        self.leaves = leaves


_Entry = Any  # None | _Leaf | _Bucket | tuple of _WIDTH entries
_EMPTY_NODE: tuple[_Entry, ...] = (None,) * _WIDTH


def _hash(key: str) -> int:
    return hash(key) & 0xFFFF_FFFF_FFFF_FFFF


def _get(node: tuple[_Entry, ...], key: str, h: int, shift: int = 0) -> _Leaf | None:
    while True:
        entry = node[(h >> shift) & _MASK]
        if entry is None:
            return None
        if isinstance(entry, _Leaf):
            return entry if entry.key == key else None
        if isinstance(entry, _Bucket):
            return next((leaf for leaf in entry.leaves if leaf.key == key), None)
        node, shift = entry, shift + _BITS


def _insert(node: tuple[_Entry, ...], leaf: _Leaf, shift: int) -> tuple[tuple[_Entry, ...], bool]:
    """``node`` with ``leaf`` added (or replacing its key); and whether the key was new."""
    slot = (leaf.hash >> shift) & _MASK
    entry = node[slot]
    added = True
    if entry is None:
        new: _Entry = leaf
    elif isinstance(entry, _Leaf):
        if entry.key == leaf.key:
            new, added = leaf, False
        elif shift + _BITS >= _MAX_SHIFT:
            new = _Bucket((entry, leaf))
        else:
            sub, _ = _insert(_EMPTY_NODE, entry, shift + _BITS)
            new, _ = _insert(sub, leaf, shift + _BITS)
    elif isinstance(entry, _Bucket):
        others = tuple(x for x in entry.leaves if x.key != leaf.key)
        added = len(others) == len(entry.leaves)
        new = _Bucket((*others, leaf))
    else:
        new, added = _insert(entry, leaf, shift + _BITS)
    return (*node[:slot], new, *node[slot + 1 :]), added


def _leaves(entry: _Entry) -> Iterator[_Leaf]:
    stack = [entry]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        if isinstance(item, _Leaf):
            yield item
        elif isinstance(item, _Bucket):
            yield from item.leaves
        else:
            stack.extend(item)


class NameMap:
    """An immutable ``str -> value`` map; ``set`` and ``merge`` return new maps."""

    __slots__ = ("_len", "_root")

    EMPTY: ClassVar[NameMap]

    def __init__(self, root: tuple[_Entry, ...], length: int) -> None:
        self._root, self._len = root, length

    def __len__(self) -> int:
        return self._len

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and _get(self._root, key, _hash(key)) is not None

    def get(self, key: str) -> Any:
        """The value of ``key``, or None."""
        leaf = _get(self._root, key, _hash(key))
        return None if leaf is None else leaf.value

    def set(self, key: str, value: Any) -> NameMap:
        """A map with ``key`` bound to ``value``."""
        root, added = _insert(self._root, _Leaf(key, value, _hash(key)), 0)
        return NameMap(root, self._len + added)

    def items(self) -> Iterator[tuple[str, Any]]:
        """Every ``(key, value)``, in no particular order."""
        return ((leaf.key, leaf.value) for leaf in _leaves(self._root))

    def merge(self, other: NameMap) -> tuple[NameMap, Clash | None]:
        """Both maps in one, and the first key they bind to different values (or None).

        Subtrees the two maps share (they grew from a common map) are not visited.
        """
        if other._root is self._root or not other._len:
            return self, None
        if not self._len:
            return other, None
        big, small = (self, other) if self._len >= other._len else (other, self)
        clash: list[Clash] = []
        root, length = _merge(big._root, small._root, 0, big._len, clash, swap=big is other)
        return NameMap(root, length), (clash[0] if clash else None)


def _merge(
    a: tuple[_Entry, ...],
    b: tuple[_Entry, ...],
    shift: int,
    length: int,
    clash: list[Clash],
    *,
    swap: bool,
) -> tuple[tuple[_Entry, ...], int]:
    """Merge trie node ``b`` into ``a``; ``length`` counts the keys of the result."""
    out = list(a)
    for slot in range(_WIDTH):
        x, y = a[slot], b[slot]
        if y is None or x is y:
            continue
        if x is None:
            out[slot] = y
            length += sum(1 for _ in _leaves(y))
        elif isinstance(x, tuple) and isinstance(y, tuple):
            out[slot], length = _merge(x, y, shift + _BITS, length, clash, swap=swap)
        else:
            node: tuple[_Entry, ...] = (None,) * slot + (x,) + (None,) * (_WIDTH - slot - 1)
            for leaf in _leaves(y):
                found = _get(node, leaf.key, leaf.hash, shift)
                if found is None:
                    node, _ = _insert(node, leaf, shift)
                    length += 1
                elif found.value is not leaf.value and not clash:
                    first, second = (leaf, found) if swap else (found, leaf)
                    clash.append((leaf.key, first.value, second.value))
            out[slot] = node[slot]
    return tuple(out), length


NameMap.EMPTY = NameMap(_EMPTY_NODE, 0)
