"""The image story: a Dockerfile that builds a tdm project into a container image.

``tdm init`` writes one, and ``tdm deploy dockerfile FILE`` writes one for an existing project.
The image runs as a non-root user (uid 10001, so Kubernetes' ``runAsNonRoot`` can check it),
starts from a pinned base, and holds no secret: it copies only the project's metadata, its
Python packages, the folder of the pipeline file and the project's ``.tdm/config.yml``; the pods
read secrets from mounted Kubernetes secrets (``TDM_SECRETS_DIR``).
"""

from __future__ import annotations

from pathlib import Path

from tdm.errors import ConfigError

__all__ = ["BASE_IMAGE", "DISTRIBUTION", "dockerfile", "project_root", "requirement"]

DISTRIBUTION = "tdm-pipelines"
"""tdm's name on the package index (``pip install tdm-pipelines``); the import name is ``tdm``."""

BASE_IMAGE = "python:3.11.11-slim-bookworm"
"""The pinned base of generated Dockerfiles (pin a digest too with ``--build-arg BASE=...``)."""

USER_ID = 10001
_SECRET_NAMES = ("secrets.yml", "secrets.yaml", ".env", "id_rsa", "id_ed25519", ".netrc")
_SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx")
_SKIP = {"tests", "test", "build", "dist", "output", "wheels", "node_modules"}


def requirement() -> str:
    """The requirement a project puts in its dependencies for this tdm.

    >>> requirement().startswith("tdm-pipelines>=")
    True
    """
    from tdm import __version__

    return f"{DISTRIBUTION}>={__version__}"


def project_root(pipeline_file: str | Path) -> Path:
    """The folder holding ``pyproject.toml`` above the pipeline file (else the file's folder)."""
    here = Path(pipeline_file).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return here


def _packages(root: Path) -> list[str]:
    return [
        d.name
        for d in sorted(root.iterdir())
        if d.is_dir()
        and (d / "__init__.py").is_file()
        and d.name not in _SKIP
        and not d.name.startswith((".", "_"))
    ]


def _check_no_secrets(root: Path, copied: list[Path]) -> None:
    for folder in copied:
        files = [folder] if folder.is_file() else sorted(folder.rglob("*"))
        for path in files:
            if path.name in _SECRET_NAMES or path.suffix in _SECRET_SUFFIXES:
                raise ConfigError(
                    f"{path.relative_to(root)} looks like a secret and would be copied into the "
                    "image; move it out of the project (pods read secrets from mounted "
                    "Kubernetes secrets, never from the image)"
                )


def dockerfile(pipeline_file: str | Path, *, root: Path | None = None) -> str:
    """A Dockerfile for the project of ``pipeline_file`` whose default command runs it.

    Copies only ``pyproject.toml`` (and the README it may name), the project's packages, the
    pipeline file's folder, ``.tdm/config.yml`` and ``wheels/`` (local wheels pip may install
    from); refuses when one of those holds a file that looks like a secret.

    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "pipelines").mkdir(); _ = (root / "pipelines" / "daily.yml").write_text("")
    >>> _ = (root / "pyproject.toml").write_text("[project]\\nname = 'jobs'\\n")
    >>> text = dockerfile(root / "pipelines" / "daily.yml")
    >>> "USER 10001" in text, 'CMD ["run", "pipelines/daily.yml", "--log-format", "json"]' in text
    (True, True)
    """
    root = root or project_root(pipeline_file)
    try:
        relative = Path(pipeline_file).resolve().relative_to(root)
    except ValueError:
        raise ConfigError(f"{pipeline_file} is not inside the project folder {root}") from None
    folder = relative.parent
    copies: list[tuple[str, str]] = []
    has_pyproject = (root / "pyproject.toml").is_file()
    if has_pyproject:
        copies.append(("pyproject.toml", "./"))
        copies += [(name, "./") for name in ("README.md", "README.rst") if (root / name).is_file()]
        copies += [(f"{p}/", f"{p}/") for p in _packages(root)]
    if (root / "wheels").is_dir():
        copies.append(("wheels/", "wheels/"))
    _check_no_secrets(root, [root / source.rstrip("/") for source, _ in copies])
    later = [(f"{folder.as_posix()}/", f"{folder.as_posix()}/")] if str(folder) != "." else []
    later = later or [(relative.as_posix(), relative.as_posix())]
    if (root / ".tdm" / "config.yml").is_file():
        later.append((".tdm/config.yml", ".tdm/config.yml"))
    _check_no_secrets(root, [root / source.rstrip("/") for source, _ in later])
    install = "." if has_pyproject else f'"{requirement()}"'
    find = " --find-links=wheels" if (root / "wheels").is_dir() else ""
    lines = [
        "# Builds this tdm project into an image:  docker build -t registry/name:tag .",
        "# No secret is copied: pods read secrets from mounted Kubernetes secrets",
        "# (TDM_SECRETS_DIR); `tdm deploy cronjob|argo` writes manifests that mount them.",
        f"ARG BASE={BASE_IMAGE}",
        "FROM ${BASE}",
        "",
        "ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \\",
        "    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \\",
        "    HOME=/home/tdm TDM_HOME=/app/.tdm",
        f"RUN useradd --uid {USER_ID} --create-home --home-dir /home/tdm "
        "--shell /usr/sbin/nologin tdm",
        "WORKDIR /app",
        "",
        *[f"COPY {source} {target}" for source, target in copies],
        f"RUN pip install{find} {install}",
        "",
        *[f"COPY {source} {target}" for source, target in later],
        # the audit trail's default SQLite file and relative outputs need writable folders
        f"RUN mkdir -p /app/.tdm /app/output && chown {USER_ID}:{USER_ID} /app/.tdm /app/output",
        f"USER {USER_ID}",
        "",
        'ENTRYPOINT ["tdm"]',
        f'CMD ["run", "{relative.as_posix()}", "--log-format", "json"]',
        "",
    ]
    return "\n".join(lines)
