"""The import rules the README states, checked on the source and on a running interpreter.

* ``stream/core`` is the pure core: no Kafka, Redis or Faust (nor the adapters that wrap them).
* Nothing under ``stream/`` imports TensorFlow, Keras or tf2onnx: the worker runs on numpy and
  onnxruntime. What ``stream/`` borrows from ``training/`` (a data loader) must not bring
  TensorFlow either; only the ``finstream train`` command hands over to the training package.

The source scan sees imports inside functions too (lazy imports would escape a runtime check);
the runtime check sees what third-party packages drag in behind our backs.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from stream.settings import REPO_ROOT

STREAM = REPO_ROOT / "stream"
TRAINING_ONLY = {"tensorflow", "keras", "tf_keras", "tf2onnx"}
NOT_IN_CORE = {
    "aiokafka",
    "kafka",
    "redis",
    "faust",
    "mode",
    "stream.state",
    "stream.serving",
    "stream.app",
    "stream.publisher",
    "stream.worker",
    "stream.stack",
    "stream.pipelines",
}
# (file, module) pairs allowed to reach into training/: the CLI's `train` command
TRAINING_ENTRY = {("stream/cli.py", "training")}


def imports(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """Every module a file imports, at any depth (relative imports resolved to absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found.append(base)
    return found


def hits(module: str, banned: set[str]) -> bool:
    return any(module == b or module.startswith(b + ".") for b in banned)


def test_core_imports_no_kafka_redis_faust_or_adapters():
    bad = [
        (str(p.relative_to(REPO_ROOT)), m)
        for p in sorted((STREAM / "core").rglob("*.py"))
        for m in imports(p)
        if hits(m, NOT_IN_CORE)
    ]
    assert bad == []


# The runtime: what ``finstream worker`` runs. The tools (stream/tools), the dashboard and the CLI
# (which dispatches to the tools) sit beside it; the runtime never imports them.
RUNTIME_FILES = (
    "app.py",
    "publisher.py",
    "worker.py",
    "settings.py",
    "health.py",
    "metrics.py",
    "observe.py",
    "types.py",
)
RUNTIME_PACKAGES = ("core", "pipelines", "serving", "state")


def test_the_runtime_never_imports_the_tools():
    files = [STREAM / f for f in RUNTIME_FILES] + [
        p for d in RUNTIME_PACKAGES for p in sorted((STREAM / d).rglob("*.py"))
    ]
    assert all(p.exists() for p in files) and len(files) > 30
    bad = [
        (str(p.relative_to(REPO_ROOT)), m)
        for p in files
        for m in imports(p)
        if hits(m, {"stream.tools", "stream.dashboard", "stream.cli"})
    ]
    assert bad == []


def test_nothing_under_stream_imports_tensorflow():
    files = sorted(STREAM.rglob("*.py"))
    assert len(files) > 20
    bad = [(str(p.relative_to(REPO_ROOT)), m) for p in files for m in imports(p) if hits(m, TRAINING_ONLY)]
    assert bad == []


def test_training_modules_used_by_stream_bring_no_tensorflow():
    """stream/ may borrow a data loader from training/ (the demo's EUR/USD feed), but what it
    imports from there must not drag TensorFlow in; only `finstream train` hands over to training."""
    used = sorted(
        {
            m
            for p in sorted(STREAM.rglob("*.py"))
            for m in imports(p)
            if hits(m, {"training"}) and (str(p.relative_to(REPO_ROOT)), m) not in TRAINING_ENTRY
        }
    )
    code = (
        "import importlib, sys\n"
        f"for m in {used!r}: importlib.import_module(m)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not set(done.stdout.split()) & TRAINING_ONLY, (used, set(done.stdout.split()) & TRAINING_ONLY)


def test_the_scan_sees_lazy_and_relative_imports(tmp_path):
    """The scanner would catch a breach: a function-level import and a relative one."""
    probe = tmp_path / "stream" / "core" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    import tensorflow as tf\n    from ..state import redis_store\n")
    got = imports(probe, tmp_path)
    assert hits(got[0], TRAINING_ONLY) and hits(got[1], NOT_IN_CORE), got


def test_a_running_worker_process_has_no_tensorflow_and_core_has_no_kafka_redis_faust():
    """Import the worker's whole module graph (jobs, app, publisher, state) in a fresh interpreter."""
    code = (
        "import sys, pkgutil, importlib, stream.core\n"
        "for m in pkgutil.walk_packages(stream.core.__path__, 'stream.core.'): importlib.import_module(m.name)\n"
        "core = {m.split('.')[0] for m in sys.modules}\n"
        "import stream.pipelines, stream.worker, stream.app, stream.publisher, stream.serving.risk, stream.serving.forecasting, "
        "stream.serving.recommending, stream.serving.models, stream.state.redis_store, stream.tools.batch_score\n"
        "worker = {m.split('.')[0] for m in sys.modules}\n"
        "print(' '.join(sorted(core))); print(' '.join(sorted(worker)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    core, worker = (set(line.split()) for line in done.stdout.strip().splitlines()[-2:])
    assert {"numpy", "stream"} <= core and not core & {"aiokafka", "kafka", "redis", "faust", "mode"}
    assert {"onnxruntime", "faust", "aiokafka", "redis"} <= worker  # the graph really was loaded
    assert not worker & TRAINING_ONLY, worker & TRAINING_ONLY
