"""Hostile YAML fails fast with a ConfigError naming the line: bombs, depth, size, recursion."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from tdm.cli import cli
from tdm.config import load_yaml
from tdm.config._yaml import YamlLimits, parse_yaml
from tdm.errors import ConfigError


def _bomb(levels: int = 8, width: int = 9, indent: str = "  ") -> str:
    """Anchors that repeat the previous anchor ``width`` times, ``levels`` deep."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


PIPES = textwrap.dedent(
    """\
    pipelines:
      - name: P
        pipes:
          - {name: src, type: input}
          - {name: L, type: limit, config: {parents: [src], n: 1}}
    """
)


def _cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), prog_name="tdm", env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output + (result.stderr or "")


def _refused(path: Path, line: int, text: str, env: dict[str, str] | None = None) -> None:
    for command in ("validate", "run"):
        code, out = _cli(command, str(path), env=env)
        assert code == 2, out
        assert f"{path}:{line}:" in out, out
        assert text in out, out
        assert "Traceback" not in out and "InternalError" not in out, out


def test_an_alias_bomb_in_params_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yml"
    path.write_text("params:\n" + _bomb() + PIPES)
    # l0 is on line 2; l6 (line 8) repeats *l5 past 1,000,000 values
    _refused(path, 8, "alias *l5 takes the values that aliases stand for past 1,000,000")


def test_an_alias_bomb_inside_a_pipe_config_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yml"
    path.write_text(
        PIPES
        + "      - name: M\n        type: map_values\n        config:\n"
        + "          parents: [L]\n          column: a\n          mapping:\n"
        + _bomb(indent="            ")
    )
    _refused(path, 18, "an alias bomb")


def test_deep_nesting_with_anchors_is_bounded_by_the_composer() -> None:
    text = "x: &x 1\n" + "".join(f"{'  ' * i}k{i}:\n" for i in range(400)) + "  " * 400 + "v\n"
    with pytest.raises(ConfigError, match="nested more than 100 levels deep") as info:
        parse_yaml(text, source="f.yml")
    assert info.value.line == 101


def test_alias_count_and_depth_through_aliases_are_bounded() -> None:
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 50) + "]\n"
    with pytest.raises(ConfigError, match=r"more than 10 aliases") as info:
        parse_yaml(many, source="f.yml", limits=YamlLimits(max_aliases=10))
    assert info.value.line == 2
    deep = "a: &a [[[[[1]]]]]\nb: [[[[[[*a]]]]]]\n"
    with pytest.raises(ConfigError, match=r"alias \*a nests the YAML more than 8 levels") as info:
        parse_yaml(deep, source="f.yml", limits=YamlLimits(max_depth=8))
    assert info.value.line == 2


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"alias \*x is used inside the value it names") as info:
        parse_yaml("a: 1\nb: &x\n  c: [*x]\n", source="f.yml")
    assert info.value.line == 3


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000 + "\n",
        "a: " + "{k: " * 3000 + "1" + "}" * 3000 + "\n",
        "".join(f"{'  ' * i}k{i}:\n" for i in range(400)) + "  " * 400 + "v\n",
    ],
    ids=["flow lists", "flow mappings", "block mappings"],
)
def test_deep_nesting_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "deep.yml"
    path.write_text(text)
    # the 101st level: a key's value on line 101 (or its key on line 100 when composed by tdm)
    _refused(path, 1 if text.startswith("a:") else 101, "nested more than 100 levels deep")


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    path.write_text(PIPES + "# padding\n" * 200)
    for command in ("validate", "run"):
        code, out = _cli(command, str(path), env={"TDM_YAML_MAX_BYTES": "1k"})
        assert code == 2, out
        assert f"{path}: the YAML is 2," in out and "over the limit of 1,024 bytes" in out, out
    with pytest.raises(ConfigError, match="over the limit"):
        load_yaml(PIPES + "#" * 100, limits=YamlLimits(max_bytes=100))
    assert load_yaml(str(path), env={}).names() == ["P"]  # the default limit is megabytes


def test_a_bad_limit_setting_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "ok.yml"
    path.write_text(PIPES)
    code, out = _cli("validate", str(path), env={"TDM_YAML_MAX_DEPTH": "deep"})
    assert code == 2
    assert "TDM_YAML_MAX_DEPTH='deep' is not a positive number" in out


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = textwrap.dedent(
        """\
        params:
          cols: &cols [a, b]
        defaults: &limit {n: 2}
        """
    )
    doc = parse_yaml(text + "x: {<<: *limit}\ny: *cols\n")
    assert doc["x"] == {"n": 2} and doc["y"] == ["a", "b"]
    project = load_yaml(
        "params:\n  keep: &keep {n: 1}\n"
        + PIPES.replace("{parents: [src], n: 1}", "{parents: [src], <<: *keep}")
    )
    assert project.names() == ["P"]
