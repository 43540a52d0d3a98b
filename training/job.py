"""The contract between ``training.pipeline`` and each training job (forecast, risk, recommend).

A job is a module with ``train(ctx: TrainContext) -> JobResult``. It writes its ONNX files into
``ctx.out_dir``, records data-quality actions in ``ctx.quality``, and returns the manifest cards,
the default model per served slot, a markdown section and JSON-able figures for the report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from stream.core.manifest import ModelCard
from training.quality import QualityLog

T = TypeVar("T")


def _no_progress(it: Iterable[T], **_: Any) -> Iterable[T]:
    return it


@dataclass(slots=True)
class TrainContext:
    out_dir: Path  # where ONNX files go (the manifest's directory)
    cache_dir: Path  # Parquet cache of converted source data
    quality: QualityLog = field(default_factory=QualityLog)
    seed: int = 7
    # progress(iterable, desc="...", total=None) -> iterable, e.g. a tqdm wrapper
    progress: Callable[..., Iterable] = _no_progress
    # True: build only what the manifest ships (every model file, card, metric and default) and skip
    # the comparisons only the report shows (the card job's ablation and reference GBMs): the rebuild
    # test's cheaper run (`finstream train --models-only`); the committed reports come from a full run
    models_only: bool = False


@dataclass(slots=True)
class JobResult:
    cards: list[ModelCard]
    defaults: dict[str, str]  # slot ("forecast" | "risk" | "recommend") -> model name
    report_md: str  # a markdown section for reports/models.md
    report: dict = field(default_factory=dict)  # JSON-able figures for reports/models.json
