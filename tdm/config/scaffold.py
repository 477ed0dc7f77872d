"""``tdm init``: write a new project from the templates in ``tdm/config/templates/project``."""

from __future__ import annotations

import keyword
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from tdm.config.image import DISTRIBUTION, dockerfile, requirement
from tdm.errors import ConfigError

__all__ = ["package_name", "scaffold"]

_RENAMES = {
    "_tdm": ".tdm",
    "_gitignore": ".gitignore",
    "_dockerignore": ".dockerignore",
    "__package__": "{{package}}",
}


def package_name(directory: str | Path) -> str:
    """A Python package name for a project folder.

    >>> package_name("demo"), package_name("My Pipelines"), package_name("2024-jobs")
    ('demo', 'my_pipelines', 'p_2024_jobs')
    """
    stem = Path(directory).resolve().name
    name = re.sub(r"\W+", "_", stem.lower()).strip("_") or "pipelines"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = "p_" + name
    return name


def scaffold(directory: str | Path, *, force: bool = False) -> list[Path]:
    """Create the project in ``directory``; returns the files written.

    Refuses a non-empty folder unless ``force`` (then existing files are overwritten).
    """
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder; choose another path")
    if root.exists() and any(root.iterdir()) and not force:
        raise ConfigError(
            f"{root} is not empty; choose a new folder, or pass --force to write the template "
            "files into it (existing files with the same names are overwritten)"
        )
    package = package_name(root)
    values = {
        "package": package,
        "name": Path(root).resolve().name,
        "requirement": requirement(),
        "distribution": DISTRIBUTION,
    }
    written: list[Path] = []
    template_root = resources.files("tdm.config").joinpath("templates/project")
    for source, relative in _walk(template_root, ""):
        target = root / _fill(relative, values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_fill(source.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(target)
    dockerfile_path = root / "Dockerfile"
    dockerfile_path.write_text(dockerfile(root / "pipelines" / "example.yml"), encoding="utf-8")
    written.append(dockerfile_path)
    return sorted(written)


def _walk(node: Traversable, prefix: str) -> list[tuple[Traversable, str]]:
    out: list[tuple[Traversable, str]] = []
    for child in node.iterdir():
        if child.name == "__pycache__":
            continue
        name = _RENAMES.get(child.name, child.name)
        if child.is_dir():
            out += _walk(child, f"{prefix}{name}/")
        elif child.name.endswith(".tmpl"):
            name = _RENAMES.get(name.removesuffix(".tmpl"), name.removesuffix(".tmpl"))
            out.append((child, prefix + name))
    return out


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text
