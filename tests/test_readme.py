"""README.md's examples run as written.

Every fenced ``python`` block runs, section by section (``## `` headings), in a fresh namespace,
in a temporary working directory, with ``TDM_HOME`` in a temporary folder. Blocks that name a
cloud or a cluster run against the suite's real local services: the test provides the named
secrets (``TDM_SECRET__<NAME>__<KEY>``, as a user would), the data the block reads, and the
few names a block leaves to the reader (``pipeline``, ``clean``, ``enrich``); host names such as
``https://mdm.example.com`` and ``tcp://scheduler:8786`` are replaced by the local servers'.
Functions named ``test_*`` that a block defines are called. Every ``yaml`` block loads: pipeline
files with ``tdm.load_yaml`` (types resolved, parents checked; secrets not required), secrets
files with the secrets-file provider. Every ``tdm ...`` command shown uses a real subcommand and
real options. A block may be excluded with ``<!-- not-tested: REASON -->`` on the line before it.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

import tdm
from tdm.cli import cli
from tdm.effects.secrets import FileSecrets

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_TESTED = re.compile(r"<!--\s*not-tested:\s*(?P<reason>.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w-]*)\s*$")


@dataclass(frozen=True)
class Block:
    lang: str
    code: str
    line: int  # the README line of the block's first code line
    section: str
    skip_reason: str | None


def parse(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, each with its ``## `` section."""
    lines = text.splitlines()
    blocks: list[Block] = []
    section, i = "", 0
    while i < len(lines):
        line = lines[i]
        match = FENCE.match(line)
        if match is None:
            if line.startswith("## "):
                section = line[3:].strip()
            i += 1
            continue
        indent, start = match["indent"], i + 1
        end = start
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        assert end < len(lines), f"README.md:{i + 1}: unclosed code fence"
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_TESTED.search(previous)
        body = [row[len(indent) :] if row.startswith(indent) else row for row in lines[start:end]]
        blocks.append(
            Block(
                lang=match["lang"],
                code=textwrap.dedent("\n".join(body)) + "\n",
                line=start + 1,
                section=section,
                skip_reason=marker["reason"] if marker else None,
            )
        )
        i = end + 1
    return blocks


BLOCKS = parse(README.read_text(encoding="utf-8"))
PYTHON_SECTIONS = list(dict.fromkeys(b.section for b in BLOCKS if b.lang == "python"))
YAML_BLOCKS = [b for b in BLOCKS if b.lang == "yaml"]


def section_blocks(section: str) -> list[Block]:
    found = [b for b in BLOCKS if b.section == section and b.lang == "python"]
    assert found, f"README.md has no section {section!r} with python blocks (renamed?)"
    return found


def execute(block: Block, namespace: dict[str, Any], replace: dict[str, str]) -> None:
    code = block.code
    for old, new in replace.items():
        code = code.replace(old, new)
    # Tracebacks show the block's own lines, under a name that says where it is in the README.
    filename = f"README.md, block at line {block.line}"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    exec(compile(code, filename, "exec"), namespace)


# --------------------------------------------------------------------------------------------
# per-section setup: the services, data and names a section's blocks rely on
# --------------------------------------------------------------------------------------------
@dataclass
class Setup:
    after: tuple[str, ...] = ()  # sections whose blocks run first, in the same namespace
    names: dict[str, Any] | None = None  # names the README leaves to the reader
    replace: dict[str, str] | None = None  # text replaced in the blocks (hosts, addresses)
    check: Callable[[dict[str, Any]], None] | None = None  # assertions on the results


Prepare = Callable[[pytest.FixtureRequest, Path, pytest.MonkeyPatch], Setup]
SETUPS: dict[str, Prepare] = {}


def setup_for(section: str) -> Callable[[Prepare], Prepare]:
    def register(fn: Prepare) -> Prepare:
        SETUPS[section] = fn
        return fn

    return register


def _s3_secret(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Any:
    s3 = request.getfixturevalue("fresh_s3_server")
    monkeypatch.setenv("TDM_SECRET__S3__KEY", s3.key)
    monkeypatch.setenv("TDM_SECRET__S3__SECRET", s3.secret)
    monkeypatch.setenv("TDM_SECRET__S3__ENDPOINT_URL", s3.endpoint_url)
    return s3


def _put(s3: Any, bucket: str, key: str, frame: pd.DataFrame) -> None:
    s3.make_bucket(bucket)
    s3.boto3_client().put_object(Bucket=bucket, Key=key, Body=frame.to_parquet(index=False))


DEVICES = pd.DataFrame(
    {
        "SerialNumber": ["C02X", "F9FZ", "R58N"],
        "Uuid": ["a1", "a2", "a3"],
        "state": ["Texas", "tex.", "calif."],
        "platform": ["Apple", "Apple", "Android"],
    }
)


@setup_for("A short tour")
def _tour(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    def check(ns: dict[str, Any]) -> None:
        report = ns["report"]
        assert report.status is tdm.Status.SUCCESS
        assert report.output.to_dict("list") == {"a": [5], "b": [9], "total": [14]}
        assert report.nodes["add_total"].rows_out == 2
        p, a, b = ns["p"], ns["step"], ns["big_orders"](over=5)
        assert tdm.pipe() >> p == p and a >> b == a >> b  # the laws the prose states
        joined = tdm.run(ns["both"], inputs={"orders": ns["df"]})
        assert joined.ok and list(joined.nodes).count("add_total") == 1

    return Setup(check=check)


@setup_for("Testing your own steps")
def _testing(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    return Setup(after=("A short tour",))  # add_total and pd come from the tour


@setup_for("Files: local, S3, Azure")
def _files(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    s3 = _s3_secret(request, mp)
    for i in range(2):
        _put(s3, "raw", f"devices/part-{i}.parquet", DEVICES.iloc[i * 2 : i * 2 + 2])
    azurite = request.getfixturevalue("azurite")
    azurite.reset()
    azurite.make_container("curated")
    mp.setenv("TDM_SECRET__AZURE__CONNECTION_STRING", azurite.connection_string)

    def check(ns: dict[str, Any]) -> None:
        assert ns["report"].ok, ns["report"].error
        with azurite.blob_service_client() as client:
            blob = client.get_blob_client("curated", "devices.csv").download_blob().readall()
        assert blob.decode().splitlines()[0] == "device_id,serial_number,state"
        manifest = json.loads((tmp / "output/devices/_tdm_manifest.json").read_text())
        assert sorted({f.split("/")[1] for f in manifest["files"]}) == [
            "platform=Android",
            "platform=Apple",
        ]

    return Setup(after=("The transform library",), check=check)  # `clean` comes from there


@setup_for("REST sources")
def _rest(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    from examples.device_inventory import demo_api

    url = request.getfixturevalue("_demo_api")
    mp.setenv("TDM_SECRET__AIRWATCH__USERNAME", demo_api.USERNAME)
    mp.setenv("TDM_SECRET__AIRWATCH__PASSWORD", demo_api.PASSWORD)
    mp.setenv("TDM_SECRET__AIRWATCH__CODE", demo_api.TENANT_CODE)

    def check(ns: dict[str, Any]) -> None:
        report = ns["report"]
        assert report.ok, report.error
        out = report.output
        assert sorted(out["Uuid"]) == sorted(demo_api.SECURITY)  # the retired one is skipped
        assert {"SerialNumber", "Encrypted"} <= set(out.columns)

    return Setup(replace={"https://mdm.example.com": url}, check=check)


@pytest.fixture
def _demo_api() -> Iterator[str]:
    from examples.device_inventory import demo_api

    with demo_api.serve() as url:
        yield url


@setup_for("Observability")
def _observability(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    s3 = _s3_secret(request, mp)
    s3.make_bucket("audit-bucket")
    (tmp / "orders.csv").write_text("id,total\n1,9.5\n2,3.0\n")
    pipeline = tdm.files.read("orders.csv")

    def check(ns: dict[str, Any]) -> None:
        report = ns["report"]
        assert report.ok, report.error
        audit = tdm.state.files("s3://audit-bucket/tdm", secret="S3")  # the first block's
        runs = tdm.history(pipeline="devices", store=audit)
        assert runs["run_id"].tolist() == [report.run_id]
        shown = "history --pipeline devices --state s3://audit-bucket/tdm --secret S3 --json"
        result = CliRunner().invoke(cli, shown.split(), prog_name="tdm")  # the command line
        assert result.exit_code == 0 and report.run_id in result.output, result.output
        assert len(ns["rt"].alerters) == 4

    return Setup(names={"pipeline": pipeline}, check=check)


@setup_for("Runs that remember")
def _remember(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    api = request.getfixturevalue("fresh_fake_api")
    rows = {i: {"sys_id": i, "sys_updated_on": f"2024-02-0{1 + i} 10:00:00"} for i in range(3)}

    def incidents(req: Any) -> Any:  # ServiceNow's `sys_updated_on>X^ORDERBY...` query
        since = req.query["sysparm_query"].split(">", 1)[1].split("^", 1)[0]
        found = [r for r in rows.values() if r["sys_updated_on"] > since]
        return {"result": sorted(found, key=lambda r: r["sys_updated_on"])}

    api.route("/api/now/table/incident", incidents)

    def check(ns: dict[str, Any]) -> None:
        first, second = ns["first"], ns["second"]
        assert first.ok and second.ok and ns["strict"].ok and ns["resumed"].ok
        assert first.nodes["incidents"].rows_out == 3 and second.nodes["incidents"].rows_out == 0
        assert first.cursors == {"incidents": "2024-02-03 10:00:00"}
        assert not ns["failed"].ok and ns["resumed"].restored == ["incidents"]
        assert len(pd.read_parquet(tmp / "lake/incidents.parquet")) == 3
        assert ns["strict"].drift == []

    return Setup(replace={"https://example.service-now.com": api.url}, check=check)


@setup_for("Beyond one machine: Dask")
def _dask(request: pytest.FixtureRequest, tmp: Path, mp: pytest.MonkeyPatch) -> Setup:
    s3 = _s3_secret(request, mp)
    client = request.getfixturevalue("dask_client")
    good = pd.DataFrame({"user": ["u1", "u2"], "value": [1.0, 2.0]})
    _put(s3, "raw", "events/date=2024-01-01/part-0.parquet", good)
    bad = good.rename(columns={"value": "amount"})  # `enrich` fails here: the re-run path runs
    _put(s3, "raw", "events/date=2024-01-02/part-0.parquet", bad)
    s3.make_bucket("curated")
    secret = {k: v for k, v in _env_secrets().items() if k.startswith("TDM_SECRET__S3__")}
    client.run(_set_env, secret)  # workers resolve secrets themselves (see the README)
    request.addfinalizer(lambda: client.run(_set_env, dict.fromkeys(secret)))
    orders = tmp / "orders.csv"
    orders.write_text("id,total\n1,9.5\n2,3.0\n")

    def check(ns: dict[str, Any]) -> None:
        report, again = ns["report"], ns["again"]
        assert [(n.name, n.status.value) for n in report.nodes.values()] == [
            ("date=2024-01-01/part-0.parquet", "SUCCESS"),
            ("date=2024-01-02/part-0.parquet", "FAILURE"),
        ]
        assert list(again.nodes) == ["date=2024-01-02/part-0.parquet"] and not again.ok
        keys = s3.boto3_client().list_objects_v2(Bucket="curated")["Contents"]
        assert [k["Key"] for k in keys] == ["events/date=2024-01-01/part-0.parquet"]

    return Setup(
        names={
            "pipeline": tdm.files.read(str(orders)),  # absolute: workers have their own cwd
            "clean": tdm.transforms.drop_nulls(),
            "enrich": tdm.transforms.assign(double="value * 2"),
        },
        replace={"tcp://scheduler:8786": client.scheduler.address},
        check=check,
    )


def _close_clients(namespace: dict[str, Any]) -> None:
    """Close the Dask clients a block opened (the README's `client = Client(...)`)."""
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask is a dev dependency
        return
    for value in namespace.values():
        if isinstance(value, Client):
            value.close()


def _env_secrets() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("TDM_SECRET__")}


def _set_env(values: dict[str, str | None]) -> None:
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# --------------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------------
def test_the_readme_has_examples_and_few_exclusions() -> None:
    assert len(PYTHON_SECTIONS) >= 5 and len(YAML_BLOCKS) >= 3
    assert {b.lang for b in BLOCKS} <= {"python", "yaml", "bash", "text"}, (
        "an unknown fence language"
    )
    skipped = [b for b in BLOCKS if b.skip_reason is not None]
    assert all(b.skip_reason for b in skipped), "a not-tested marker needs a reason"
    assert len(skipped) <= 3, "keep exclusions few: run the block against a local service"
    assert set(SETUPS) <= set(PYTHON_SECTIONS), "a setup for a section the README lacks"


@pytest.mark.parametrize("section", PYTHON_SECTIONS)
def test_python_examples_run(
    section: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    prepare = SETUPS.get(section)
    setup = prepare(request, tmp_path, monkeypatch) if prepare else Setup()
    namespace: dict[str, Any] = {"__name__": "readme_example", **(setup.names or {})}
    blocks = [b for name in setup.after for b in section_blocks(name)] + section_blocks(section)
    for old in setup.replace or {}:
        assert any(old in b.code for b in blocks), f"{section!r} no longer mentions {old!r}"
    ran = 0
    try:
        for block in blocks:
            if block.skip_reason is None:
                execute(block, namespace, setup.replace or {})
                ran += 1
    finally:
        _close_clients(namespace)
    assert ran, f"every python block of {section!r} is excluded"
    own = "".join(b.code for b in section_blocks(section))
    for name, value in list(namespace.items()):
        if name.startswith("test_") and callable(value) and f"def {name}(" in own:
            value()
    if setup.check is not None:
        setup.check(namespace)


@pytest.fixture
def my_company(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The user's own pipe module that the YAML example names (my_company.pipes:clean_devices)."""
    package = tmp_path / "user_code" / "my_company"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "pipes.py").write_text(
        "import pandas as pd\nimport tdm\n\n\n@tdm.transform\n"
        "def clean_devices(df: pd.DataFrame, *, since: str) -> pd.DataFrame:\n"
        "    return df\n"
    )
    monkeypatch.syspath_prepend(str(package.parent))  # sys.path is restored afterwards
    monkeypatch.chdir(tmp_path)
    yield
    for name in ("my_company.pipes", "my_company"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("block", YAML_BLOCKS, ids=lambda b: f"line{b.line}")
@pytest.mark.usefixtures("my_company")
def test_yaml_examples_load(block: Block, tmp_path: Path) -> None:
    data = yaml.safe_load(block.code)
    assert isinstance(data, dict) and data.get("version") == 1
    if "pipelines" in data or "pipeline_drivers" in data:
        project = tdm.load_yaml(block.code)
        assert project.names() and all(spec.pipeline.outputs for spec in project.pipelines)
        path = tmp_path / "pipeline.yml"
        path.write_text(block.code)
        for args in (["validate", "--no-secrets"], ["graph"], ["list"], ["run", "--dry-run"]):
            result = CliRunner().invoke(cli, [*args, str(path)], prog_name="tdm")
            assert result.exit_code == 0, (args, result.output)
    else:  # a secrets file: every section is readable
        path = tmp_path / "secrets.yml"
        path.write_text(block.code)
        path.chmod(0o600)
        provider = FileSecrets(path)
        for name, keys in data.items():
            if name != "version":
                assert set(provider.section(name)) == set(keys)


COMMAND = re.compile(r"`(tdm (?:[^`]|\n)*?)`")


def _commands() -> list[str]:
    text = README.read_text(encoding="utf-8")
    shown = [m.group(1) for m in COMMAND.finditer(re.sub(r"```.*?```", "", text, flags=re.S))]
    for block in BLOCKS:
        if block.lang == "bash":
            shown += [line.split("#")[0] for line in block.code.splitlines()]
    return [" ".join(c.split()) for c in shown if c.strip().startswith("tdm ")]


def _options(command: click.Command) -> dict[str, click.Parameter]:
    return {o: p for p in command.params for o in (*p.opts, *p.secondary_opts) if o[0] == "-"}


@pytest.mark.parametrize("shown", _commands())
def test_tdm_commands_shown_exist(shown: str) -> None:
    words = shown.replace("\\|", "|").replace("[", " ").replace("]", " ").split()[1:]
    if words[0].startswith("-"):
        assert words[0] in ("--help", "-h", "--version"), shown
        return
    assert isinstance(cli, click.Group)
    command = cli.commands.get(words[0])
    assert command is not None, f"{shown}: no subcommand {words[0]!r}"
    if isinstance(command, click.Group) and len(words) > 1:  # tdm state show ...
        sub = command.commands.get(words[1])
        assert sub is not None, f"{shown}: `tdm {words[0]}` has no subcommand {words[1]!r}"
        command, words = sub, words[1:]
    options = {**_options(command), "--help": None, "-h": None}
    values = set()
    for i, word in enumerate(words[1:], start=1):
        if not word.startswith("-"):
            continue
        name = word.split("=")[0]
        assert name in options, f"{shown}: `tdm {words[0]}` has no option {name}"
        param = options[name]
        value = words[i + 1] if i + 1 < len(words) else ""
        values.add(i + 1)
        if isinstance(param, click.Option) and isinstance(param.type, click.Choice):
            if "|" in value:  # an alternatives list must name exactly the choices
                assert set(value.split("|")) == set(param.type.choices), shown
            elif value.isalpha() and not value.isupper():
                assert value in param.type.choices, shown
    positional = [p for p in command.params if isinstance(p, click.Argument)]
    alternatives = [w for i, w in enumerate(words) if "|" in w and i and i not in values]
    for word in alternatives:
        choices = [set(p.type.choices) for p in positional if isinstance(p.type, click.Choice)]
        assert set(word.split("|")) in choices, shown


def test_scripts_and_options_shown_exist_and_the_demo_does_what_the_quickstart_says() -> None:
    for block in BLOCKS:
        if block.lang == "bash":
            for line in block.code.splitlines():
                words = line.split("#")[0].split()
                if words[:1] == ["bash"]:
                    assert (ROOT / words[1]).is_file(), line
    text = " ".join(README.read_text(encoding="utf-8").split())
    for script, flags in re.findall(
        r"`python (benchmarks/\S+\.py)((?: --[\w-]+(?: \d+)?)*)`", text
    ):
        source = (ROOT / script).read_text(encoding="utf-8")
        for flag in re.findall(r"--[\w-]+", flags):
            assert f'"{flag}"' in source, f"{script} has no option {flag}"
    demo = (ROOT / "scripts/demo.sh").read_text(encoding="utf-8")
    pipeline = (ROOT / "examples/demo/pipeline.yml").read_text(encoding="utf-8")
    assert "The demo is `tdm run examples/demo/pipeline.yml`" in text
    assert '"$TDM" run examples/demo/pipeline.yml' in demo and '"$TDM" history' in demo
    for path in ("examples/demo/orders.csv", "output/demo/totals_by_state.csv"):
        assert f"`{path}`" in text and path in pipeline + demo, path


def test_the_harness_itself() -> None:
    text = (
        "## One\n\n- a bullet:\n\n  ```python\n  x = 1\n  ```\n\n"
        "<!-- not-tested: needs an AWS account -->\n```python\ny = 2\n```\n"
    )
    first, second = parse(text)
    assert (first.section, first.code, first.line, first.skip_reason) == ("One", "x = 1\n", 6, None)
    assert (second.code, second.skip_reason) == ("y = 2\n", "needs an AWS account")
    for wrong in (
        "tdm run FILE --no-such-option",
        "tdm nothing FILE",
        "tdm graph FILE [--format text|mermaid]",
        "tdm deploy argo|cronjob|helm FILE",
    ):
        with pytest.raises(AssertionError):
            test_tdm_commands_shown_exist(wrong)


NOT_ATTRIBUTES = {"tdm.audit", "tdm.pipes"}  # a logger name and an entry-point group


def _resolve(dotted: str) -> bool:
    import importlib

    parts = dotted.split(".")
    parts = parts if parts[0] == "tdm" else ["tdm", *parts]
    obj: Any = tdm
    for i, part in enumerate(parts[1:], start=2):
        if hasattr(obj, part):
            obj = getattr(obj, part)
            continue
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            return False
    return True


def test_api_names_in_the_prose_exist() -> None:
    text = re.sub(r"```.*?```", "", README.read_text(encoding="utf-8"), flags=re.S)
    names = {
        m.group(1)
        for span in re.findall(r"`([^`]+)`", text)
        for m in re.finditer(r"(?<![\w.])((?:tdm|rest|files)(?:\.\w+)+)", span)
    }
    assert len(names) > 20
    missing = sorted(n for n in names - NOT_ATTRIBUTES if not _resolve(n))
    assert not missing, f"README.md names what tdm does not have: {missing}"


def _top_level_spans(row: str) -> list[str]:
    """Backticked spans of a table row that are not inside a parenthesised remark."""
    spans, depth, inside, current = [], 0, False, ""
    for char in row:
        if char == "`":
            if inside and depth == 0:
                spans.append(current)
            inside, current = not inside, ""
        elif inside:
            current += char
        elif char in "()":
            depth += 1 if char == "(" else -1
    return spans


def test_the_transform_table_names_real_steps() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## The transform library", 1)[1].split("```", 1)[0]
    rows = [r.split("|")[2] for r in table.splitlines() if r.startswith("| ") and "---" not in r]
    spans = [re.split(r"[(.]", s)[0] for row in rows[1:] for s in _top_level_spans(row)]
    names = {s for s in spans if s.islower()}  # steps; `Failure(ValidationError)` is a result
    assert len(names) > 30
    assert not sorted(n for n in names if not hasattr(tdm.transforms, n))
