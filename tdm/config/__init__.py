"""Declarative pipelines: the YAML loader (original tdm format) and the type registry.

>>> import tdm
>>> text = "pipelines:\\n  - name: P\\n    pipes:\\n      - {name: x, type: input}\\n"
>>> project = tdm.load_yaml(text)
>>> project.names(), project.pipeline("P") == tdm.inputs.frame("x")
(['P'], True)
"""

from tdm.config.loader import load_yaml
from tdm.config.project import ComponentSpec, PipelineSpec, PipeSpec, Project
from tdm.config.registry import Registry, TypeEntry, default_registry

__all__ = [
    "ComponentSpec",
    "PipeSpec",
    "PipelineSpec",
    "Project",
    "Registry",
    "TypeEntry",
    "default_registry",
    "load_yaml",
]
