"""A YAML file names only tdm steps: nothing else is called, and the standard library is not imported.

Each hostile ``type:`` is tried through the real CLI, with ``validate`` and with ``run``: both end
with exit 2 and a ``ConfigError`` naming the file, the line and what was found, and the side
effect the callable would have had (a file, a directory, an import) did not happen.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.config import load_yaml
from tdm.core.marks import factory_kind, mark_factory
from tdm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def _pipe_file(tmp_path: Path, type_: str, config: str, *, extra: str = "") -> Path:
    path = tmp_path / "hostile.yml"
    path.write_text(
        extra
        + textwrap.dedent(
            f"""\
            pipelines:
              - name: P
                pipes:
                  - name: src
                    type: input
                  - name: evil
                    type: "{type_}"
                    config: {config}
            """
        )
    )
    return path


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="tdm")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output + (result.stderr or "")


def _both(path: Path, tmp_path: Path) -> list[tuple[int, str]]:
    """``tdm validate`` and ``tdm run`` (with an input, so only the config can stop it)."""
    frame = tmp_path / "in.csv"
    pd.DataFrame({"a": [1]}).to_csv(frame, index=False)
    return [
        _cli("validate", str(path), "--no-secrets"),
        _cli("run", str(path), "--input", f"src={frame}"),
    ]


def _assert_refused(results: list[tuple[int, str]], path: Path, line: int, found: str) -> None:
    for code, out in results:
        assert code == 2, out
        assert f"{path}:{line}:" in out, out
        assert found in out, out
        assert "Traceback" not in out and "InternalError" not in out, out


def test_subprocess_run_is_never_called(tmp_path: Path) -> None:
    marker = tmp_path / "X"
    path = _pipe_file(tmp_path, "subprocess:run", f"{{parents: [src], args: [touch, {marker}]}}")
    results = _both(path, tmp_path)
    _assert_refused(results, path, 7, "subprocess:run is not a tdm step factory")
    assert not marker.exists()


def test_tempfile_mkdtemp_is_never_called(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    path = _pipe_file(tmp_path, "tempfile:mkdtemp", f"{{dir: {scratch}}}")
    _assert_refused(_both(path, tmp_path), path, 7, "tempfile:mkdtemp is not a tdm step factory")
    assert list(scratch.iterdir()) == []


def test_os_makedirs_is_refused_for_what_it_is_not_for_a_missing_name(tmp_path: Path) -> None:
    target = tmp_path / "made"
    path = _pipe_file(tmp_path, "os:makedirs", f"{{name: {target}}}")
    results = _both(path, tmp_path)
    _assert_refused(results, path, 7, "os:makedirs is not a tdm step factory")
    assert all("needs config 'name'" not in out for _, out in results)
    assert not target.exists()


def test_a_standard_library_module_is_never_imported() -> None:
    # a fresh interpreter: `this` prints the Zen of Python when it is imported
    code = textwrap.dedent(
        """
        import sys
        from tdm.config import load_yaml
        from tdm.errors import ConfigError
        for name in ("this:x", "antigravity:fly", "idlelib:run", "turtle:done"):
            try:
                load_yaml("{pipelines: [{name: P, pipes: [{name: a, type: '%s'}]}]}" % name)
            except ConfigError as exc:
                assert "standard-library module" in str(exc), exc
            else:
                raise SystemExit("loaded " + name)
        print(sorted(m for m in ("this", "antigravity", "idlelib", "turtle") if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n"  # nothing imported, nothing printed (no Zen of Python)


@pytest.mark.parametrize(
    "type_",
    [
        "os:system",
        "os.path:join",
        "builtins:eval",
        "__main__:main",
        "importlib:import_module",
        "shutil:rmtree",
        "pickle:loads",
        "ctypes:CDLL",
        "_thread:start_new_thread",
    ],
)
def test_standard_library_paths_are_refused_before_import(type_: str) -> None:
    with pytest.raises(ConfigError, match=r"standard-library module.*nothing was imported"):
        load_yaml(f"{{pipelines: [{{name: P, pipes: [{{name: a, type: '{type_}'}}]}}]}}")


@pytest.mark.parametrize(
    ("type_", "found"),
    [
        ("pandas:read_csv", "pandas:read_csv is not a tdm step factory: it is a function"),
        ("pandas:DataFrame", "pandas:DataFrame is not a tdm step factory: it is a class"),
        ("tdm.config.loader:load_yaml", "is not a tdm step factory: it is a function"),
        ("tdm.cli:cli", "tdm.cli:cli is not a tdm step factory: it is a _TdmGroup"),
    ],
)
def test_callables_that_are_not_tdm_factories_are_refused(type_: str, found: str) -> None:
    text = f"{{pipelines: [{{name: P, pipes: [{{name: a, type: '{type_}'}}]}}]}}"
    with pytest.raises(ConfigError, match="nothing was called") as info:
        load_yaml(text)
    assert found in str(info.value)


def test_a_users_module_is_imported_but_nothing_in_it_is_called(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mod = tmp_path / "trust_user_steps.py"
    touched = tmp_path / "called"
    mod.write_text(
        textwrap.dedent(
            f"""\
            import pathlib
            IMPORTED = True

            def writes(**config):
                pathlib.Path({str(touched)!r}).write_text("called")

            class Maker:
                def __init__(self, **config):
                    pathlib.Path({str(touched)!r}).write_text("called")

            class _Anything:
                def __getattr__(self, name):
                    return "step"
                def __call__(self, **config):
                    pathlib.Path({str(touched)!r}).write_text("called")

            anything = _Anything()
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for attr, what in [("writes", "a function"), ("Maker", "a class"), ("anything", "a _Anything")]:
        path = _pipe_file(tmp_path, f"trust_user_steps:{attr}", "{parents: [src], x: 1}")
        _assert_refused(_both(path, tmp_path), path, 7, f"it is {what}")
    assert sys.modules["trust_user_steps"].IMPORTED
    assert not touched.exists()


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("alert_managers:\n  - {name: a, type: 'subprocess:run', config: {args: [touch, X]}}\n", 2),
        ("state_manager: {type: 'os:system', config: {command: touch X}}\n", 1),
        ("alert_managers:\n  - {name: a, type: 'pandas:read_csv', config: {x: 1}}\n", 2),
    ],
)
def test_alert_and_state_types_are_refused_too(tmp_path: Path, section: str, line: int) -> None:
    path = _pipe_file(tmp_path, "tdm.transforms:limit", "{parents: [src], n: 1}", extra=section)
    results = _both(path, tmp_path)
    for code, out in results:
        assert code == 2, out
        assert f"{path}:{line}:" in out, out
        assert "is not a tdm" in out or "standard-library" in out, out
    assert not (ROOT / "X").exists() and not (tmp_path / "X").exists()


def test_config_values_are_type_checked_before_anything_runs(tmp_path: Path) -> None:
    out_file = tmp_path / "out.csv"
    source = tmp_path / "in.csv"
    pd.DataFrame({"a": [1, 2]}).to_csv(source, index=False)
    path = tmp_path / "limit.yml"
    path.write_text(
        textwrap.dedent(
            f"""\
            pipelines:
              - name: P
                pipes:
                  - {{name: src, type: read, config: {{path: {source}}}}}
                  - {{name: L, type: limit, config: {{parents: [src], n: abc}}}}
                  - {{name: W, type: write, config: {{parents: [L], path: {out_file}}}}}
            """
        )
    )
    for code, out in (_cli("validate", str(path), "--no-secrets"), _cli("run", str(path))):
        assert code == 2, out
        assert f"{path}:5:" in out and "config 'n' of limit must be int, got str 'abc'" in out
    assert not out_file.exists()


def test_built_in_factories_are_trusted_by_dotted_path_too() -> None:
    project = load_yaml(
        "{pipelines: [{name: P, pipes: [{name: s, type: input},"
        " {name: t, type: 'tdm.transforms:limit', config: {parents: [s], n: 1}}]}]}"
    )
    out = tdm.run(project.pipeline(), inputs={"s": pd.DataFrame({"a": [1, 2]})}).output
    assert out["a"].tolist() == [1]


def test_the_mark_is_read_without_running_the_objects_code() -> None:
    class Answers:
        def __getattr__(self, name: str) -> str:
            raise AssertionError("the mark was read with getattr")

    assert factory_kind(Answers()) is None
    assert factory_kind(mark_factory(lambda: None, "sink")) == "sink"
    with pytest.raises(ValueError, match="unknown factory kind"):
        mark_factory(lambda: None, "anything")  # type: ignore[arg-type]
