"""``finstream train``: run the training jobs, write the ONNX files, the manifest and the reports.

One training job per pipeline (``stream.pipelines``: forecast, risk, recommend, in their order),
named like it; each pipeline names its training module (``training.forecast``, ...) with
``train(ctx: TrainContext) -> JobResult`` (``training.job``) and the model tasks it owns. ``only``
limits the jobs; the manifest and reports are then *merged*: the models, defaults and report
sections of jobs that did not run are kept.

A requested job whose module is missing or fails stops the run with an error before anything
is written (no half-updated manifest); jobs that were not requested are never imported.
"""

from __future__ import annotations

import importlib
import os
import random
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from stream import pipelines
from stream.core.manifest import Manifest, ManifestError, read_manifest, write_manifest
from training.job import JobResult, TrainContext
from training.quality import QualityLog

REPO_ROOT = Path(__file__).resolve().parent.parent


class TrainingError(RuntimeError):
    pass


def tqdm_progress(iterable: Iterable, desc: str | None = None, total: int | None = None, **kw) -> Iterable:
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=True, dynamic_ncols=True, file=sys.stderr, **kw)


def _seed_everything(seed: int) -> None:
    import numpy as np

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    random.seed(seed)
    np.random.seed(seed)


def _job_module(job: str):
    trainer = pipelines.get(job).trainer
    try:
        mod = importlib.import_module(trainer)
    except ModuleNotFoundError as exc:
        if exc.name == trainer:
            raise TrainingError(f"job {job!r} was requested but its module {trainer} does not exist") from None
        raise
    if not callable(getattr(mod, "train", None)):
        raise TrainingError(f"{trainer} has no train(ctx) function")
    return mod


def _load_existing(out: Path) -> Manifest:
    if not (out / "manifest.json").exists():
        return Manifest()
    try:
        return read_manifest(out)
    except ManifestError as exc:
        print(f"warning: ignoring unreadable existing manifest ({exc}); writing a fresh one", file=sys.stderr)
        return Manifest()


def merge_manifest(existing: Manifest, results: dict[str, JobResult], out: Path) -> tuple[Manifest, list[Path]]:
    """New manifest = existing minus entries of the jobs that ran, plus their new cards and defaults.
    Returns it with the ONNX files of replaced entries that no new card uses (to delete)."""
    m = Manifest(dict(existing.models), dict(existing.defaults))
    stale: list[Path] = []
    new_files = {c.file for r in results.values() for c in r.cards}
    for job in results:
        for name, card in list(m.models.items()):
            if card.extra.get("job", job) == job and card.task in pipelines.get(job).trained_tasks:
                del m.models[name]
                if card.file not in new_files:
                    stale.append(out / card.file)
    for job, res in results.items():
        for card in res.cards:
            owned = pipelines.get(job).trained_tasks
            if card.task not in owned:
                raise TrainingError(
                    f"job {job!r} produced model {card.name!r} with task {card.task!r}, expected one of {sorted(owned)}"
                )
            if not (out / card.file).exists():
                raise TrainingError(f"model {card.name!r}: file {card.file} is not in {out}")
            card.extra.setdefault("job", job)
            m.add(card)
    for job, res in results.items():
        for slot, name in res.defaults.items():
            try:  # forecast@1h: the forecast slot of one bar interval
                served = pipelines.by_slot(slot).served_tasks
            except KeyError:
                raise TrainingError(f"job {job!r} set a default for unknown slot {slot!r}") from None
            if name not in m.models:
                raise TrainingError(f"job {job!r} names missing model {name!r} as default for {slot!r}")
            if m.models[name].task not in served:
                raise TrainingError(f"default for {slot!r} is {name!r} with task {m.models[name].task!r}")
            m.defaults[slot] = name
    for slot, name in list(m.defaults.items()):
        if name not in m.models:  # a job's rerun dropped a model that was a default
            del m.defaults[slot]
    return m, stale


def main(
    only: list[str] | None = None,
    out: Path | None = None,
    *,
    reports_dir: Path | None = None,
    cache_dir: Path | None = None,
    seed: int = 7,
    progress=tqdm_progress,
    models_only: bool = False,
) -> dict:
    """Train ``only`` (default: every job), write ONNX files + manifest into ``out`` (default: the
    settings' ``model_dir``) and the reports into ``reports_dir`` (default: ``reports/`` of the
    repository when ``out`` is the default, else ``out/reports``). Returns the run summary.

    ``models_only``: the same models, cards and defaults, without the report-only comparisons
    (``TrainContext.models_only``); refused for the repository's reports, which stay complete."""
    from stream.settings import get_settings
    from training.report import write_reports

    settings = get_settings()
    every = pipelines.names()
    jobs = list(dict.fromkeys(only or every))
    unknown = [j for j in jobs if j not in every]
    if unknown:
        raise TrainingError(f"unknown pipeline(s) {unknown}; choose from {list(every)}")
    jobs = [j for j in every if j in jobs]
    modules = {job: _job_module(job) for job in jobs}  # fail before any training if one is missing
    default_out = out is None
    out = Path(out or settings.model_dir).resolve()
    if reports_dir is None:
        reports_dir = (
            REPO_ROOT / "reports" if default_out or out == Path(settings.model_dir).resolve() else out / "reports"
        )
    if models_only and Path(reports_dir).resolve() == (REPO_ROOT / "reports").resolve():
        raise TrainingError("--models-only skips report-only comparisons: give --out outside the committed models")
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = Path(cache_dir or Path(settings.home) / "data")

    _seed_everything(seed)
    quality = QualityLog()
    results: dict[str, JobResult] = {}
    timings: dict[str, float] = {}
    for job in jobs:
        t0 = time.perf_counter()
        print(f"[train] {job} …", file=sys.stderr, flush=True)
        ctx = TrainContext(
            out_dir=out,
            cache_dir=cache_dir,
            quality=QualityLog(),
            seed=seed,
            progress=progress,
            models_only=models_only,
        )
        res = modules[job].train(ctx)
        if not isinstance(res, JobResult):
            raise TrainingError(f"training.{job}.train returned {type(res).__name__}, expected JobResult")
        results[job] = res
        quality.merge(ctx.quality)
        timings[job] = round(time.perf_counter() - t0, 1)
        print(
            f"[train] {job} done in {timings[job]} s: {', '.join(c.name for c in res.cards)}",
            file=sys.stderr,
            flush=True,
        )

    manifest, stale = merge_manifest(_load_existing(out), results, out)
    write_manifest(manifest, out)
    for p in stale:
        p.unlink(missing_ok=True)
    paths = write_reports(Path(reports_dir), results, quality.to_dict(), manifest.defaults)
    print(
        f"[train] manifest: {out / 'manifest.json'} ({len(manifest.models)} models, defaults {manifest.defaults})",
        file=sys.stderr,
    )
    print(f"[train] reports: {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return {
        "jobs": jobs,
        "timings": timings,
        "defaults": manifest.defaults,
        "models": sorted(manifest.models),
        "manifest": str(out / "manifest.json"),
        "reports": [str(p) for p in paths],
    }


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", action="append", choices=pipelines.names())
    ap.add_argument("--out", type=Path)
    ap.add_argument("--models-only", action="store_true")
    a = ap.parse_args()
    main(only=a.only, out=a.out, models_only=a.models_only)
