"""Works when installed, not only from the repository (issue 8).

Builds the wheel from the working tree, installs it (no dependencies) into a fresh venv under a
temp dir whose only other packages are this venv's (a ``.pth`` line: the runtime's onnxruntime,
Faust, redis-py; the editable install's own finder is not activated that way), and, from a cwd
outside the repository, builds the worker's jobs: every pipeline's served models must load from
the installed package's ``onnx_models/`` through the default settings. ``FINSTREAM_MODEL_DIR``
must still win. No servers: the Redis client is created, never connected.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv

import pytest

from stream import pipelines
from stream.settings import REPO_ROOT

SOURCES = ("pyproject.toml", "README.md", "stream", "training", "onnx_models")
PROBE = """
import json, sys
import stream
from stream.settings import Settings
from stream.worker import build_jobs
from stream.core.manifest import ManifestError
s = Settings()
try:
    jobs = build_jobs(s)
except ManifestError as exc:
    print(json.dumps({"error": str(exc)})); sys.exit(0)
served = {slot: m.name for j in jobs.values() for slot, m in j.models.served.items()}
print(json.dumps({"stream": stream.__file__, "model_dir": str(s.model_dir), "topics": sorted(jobs), "served": served}))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(python of a venv with the built wheel installed, that venv's site-packages)."""
    root = tmp_path_factory.mktemp("installed")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    built = subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(root / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (root / "dist").glob("finstream-*.whl")
    venv.create(root / "venv", with_pip=False)
    python = root / "venv" / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (root / "venv" / site.removeprefix(str(root / "venv") + "/")).joinpath("deps.pth").write_text(
        sysconfig.get_path("purelib") + "\n"
    )
    done = subprocess.run(
        [*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return python, root


def _probe(python, cwd, **env):
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env}
    done = subprocess.run([str(python), "-c", PROBE], cwd=cwd, env=clean, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_installed_worker_finds_its_models(installed, tmp_path):
    python, root = installed
    got = _probe(python, tmp_path)
    venv_dir = str(root / "venv")
    assert got["stream"].startswith(venv_dir), got  # the wheel's code, not the checkout's
    assert got["model_dir"].startswith(venv_dir) and got["model_dir"].endswith("onnx_models"), got
    assert got["topics"] == sorted(p.topic(_default_settings()) for p in pipelines.all_pipelines())
    assert set(pipelines.slots()) <= set(got["served"]), got["served"]
    committed = json.loads((REPO_ROOT / "onnx_models" / "manifest.json").read_text())["defaults"]
    assert {slot: committed[slot] for slot in got["served"]} == got["served"]


def test_finstream_model_dir_still_wins(installed, tmp_path):
    python, _ = installed
    elsewhere = tmp_path / "models-elsewhere"
    shutil.copytree(REPO_ROOT / "onnx_models", elsewhere)
    got = _probe(python, tmp_path, FINSTREAM_MODEL_DIR=str(elsewhere))
    assert got["model_dir"] == str(elsewhere) and set(pipelines.slots()) <= set(got["served"]), got
    empty = tmp_path / "no-models"
    empty.mkdir()
    assert "no loadable model" in _probe(python, tmp_path, FINSTREAM_MODEL_DIR=str(empty))["error"]


def test_the_console_script_runs(installed, tmp_path):
    python, _ = installed
    done = subprocess.run(
        [str(python.parent / "finstream"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0 and "worker" in done.stdout, done.stderr[-2000:]


def _default_settings():
    from stream.settings import Settings

    return Settings.model_construct()
