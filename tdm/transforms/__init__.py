"""A library of pure steps: each public factory returns a :class:`~tdm.Pipe`."""

from tdm.transforms.combine import concat, join

__all__ = ["concat", "join"]
