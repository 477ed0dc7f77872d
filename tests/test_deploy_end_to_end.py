"""From ``tdm init`` to a CronJob, as a new user goes: on THIS tdm, built into a wheel.

1. Build tdm's wheel (``tdm-pipelines``) from a copy of the source into a tmp folder.
2. ``tdm init demo``; install the scaffolded project into a fresh venv with
   ``pip install --no-index --find-links wheels``: its dependency resolves to that wheel.
   The venv sees the test environment's third-party packages through a ``.pth`` folder of links
   (everything but tdm itself), so nothing is downloaded.
3. With the venv's own ``tdm``: validate, run (JSON summary), ``deploy cronjob`` with a remote
   audit store; the manifest is schema-validated.
4. Run the manifest's container command the way the pod would: its args and env, its secret
   mounts laid out as files; the audit record lands in S3 (moto) and ``tdm history`` reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import yaml

from tests.config.manifest_schemas import validate_manifest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240, check=False
    )
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _build_wheel(tmp: Path) -> Path:
    source = tmp / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "tdm", source / "tdm", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(wheels), str(source)],
        cwd=tmp,
    )  # fmt: skip
    return wheels


def _fresh_venv(tmp: Path) -> Path:
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp)
    here = Path(sysconfig.get_paths()["purelib"])
    deps = tmp / "deps"
    deps.mkdir()
    for entry in here.iterdir():
        own = entry.name.lower().startswith(("tdm", "__editable__")) or entry.suffix == ".pth"
        if not own:
            (deps / entry.name).symlink_to(entry)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "_test_deps.pth").write_text(f"{deps}\n")
    return venv


def test_init_validate_run_deploy_on_a_wheel_in_a_fresh_venv(
    tmp_path: Path, s3_server: Any
) -> None:
    wheels = _build_wheel(tmp_path)
    (wheel,) = wheels.glob("*.whl")
    assert wheel.name.startswith("tdm_pipelines-")

    work = tmp_path / "work"
    work.mkdir()
    dev_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    _run([sys.executable, "-m", "tdm", "init", "demo"], cwd=work, env=dev_env)
    demo = work / "demo"
    pyproject = (demo / "pyproject.toml").read_text()
    assert '"tdm-pipelines>=' in pyproject

    venv = _fresh_venv(tmp_path)
    python, tdm = venv / "bin" / "python", venv / "bin" / "tdm"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-index",
         "--no-build-isolation", "--find-links", str(wheels), str(demo)],
        cwd=tmp_path,
    )  # fmt: skip
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TDM_", "PYTHON"))}
    env |= {"TDM_HOME": str(home), "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"}
    where = _run(
        [str(python), "-c", "import tdm, demo.pipes, importlib.metadata as m; "
         "print(tdm.__file__); print(m.version('tdm-pipelines'))"],
        cwd=tmp_path, env=env,
    ).split()  # fmt: skip
    assert where[0].startswith(str(venv)), "tdm must come from the wheel in the fresh venv"
    import tdm as this_tdm

    assert where[1] == this_tdm.__version__

    # the user's loop, with the venv's own `tdm` command
    out = _run([str(tdm), "validate", "pipelines/example.yml"], cwd=demo, env=env)
    assert "OK: pipelines/example.yml: 1 pipeline(s): Example" in out
    proc = subprocess.run(
        [str(tdm), "run", "pipelines/example.yml", "--log-format", "json"],
        cwd=demo, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "SUCCESS"
    assert [json.loads(line)["level"] for line in proc.stderr.splitlines()]
    assert (demo / "output" / "large_orders.csv").is_file()

    s3_server.make_bucket("audit")
    proc = subprocess.run(
        [str(tdm), "deploy", "cronjob", "pipelines/example.yml", "--image",
         "registry.example.com/demo:1", "--state", "s3://audit/demo", "--state-secret", "S3",
         "--limits", "memory=1Gi", "-o", "cronjob.yml"],
        cwd=demo, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr  # remote audit store, every secret mounted
    (cronjob,) = list(yaml.safe_load_all((demo / "cronjob.yml").read_text()))
    validate_manifest(cronjob)
    assert cronjob["spec"]["schedule"] == "0 6 * * *"
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert [v["secret"]["secretName"] for v in pod["volumes"]] == ["tdm-s3"]

    # the Dockerfile `tdm init` wrote is the one `tdm deploy dockerfile` writes
    dockerfile = _run([str(tdm), "deploy", "dockerfile", "pipelines/example.yml"], demo, env)
    assert dockerfile == (demo / "Dockerfile").read_text()

    # the pod: the manifest's command, env and secret mounts (as files), a fresh $TDM_HOME
    mounts = tmp_path / "pod-secrets"
    for mount in container["volumeMounts"]:
        folder = mounts / Path(mount["mountPath"]).name
        folder.mkdir(parents=True)
        for key, value in {
            "key": s3_server.key,
            "secret": s3_server.secret,
            "endpoint_url": s3_server.endpoint_url,
        }.items():
            (folder / key).write_text(value + "\n")
    pod_env = {**env, **{e["name"]: e["value"] for e in container["env"]}}
    pod_env |= {"TDM_SECRETS_DIR": str(mounts), "TDM_HOME": str(tmp_path / "pod-home")}
    proc = subprocess.run(
        [str(venv / "bin" / container["command"][0]), *container["args"]],
        cwd=demo, env=pod_env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_id = json.loads(proc.stdout)["pipelines"][0]["run_id"]
    history = _run(
        [str(tdm), "history", "--state", "s3://audit/demo", "--secret", "S3", "--json"],
        cwd=demo, env={**pod_env, "TDM_HOME": str(home)},
    )  # fmt: skip
    runs = [json.loads(line) for line in history.splitlines() if line.startswith("{")]
    assert [(r["run_id"], r["status"]) for r in runs] == [(run_id, "SUCCESS")]
