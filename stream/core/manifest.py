"""The model manifest (``onnx_models/manifest.json``): the contract between training and serving.

Training writes it with ``ModelCard``/``Manifest``; the worker and ``finstream score`` read it.
Layout::

    {
      "schema": 1,
      "generated_at": "...",
      "defaults": {"forecast": "<model>", "risk": "<model>", "recommend": "<model>"},
      "models": {"<name>": <ModelCard as dict>, ...}
    }

A served slot (``defaults`` key) names the model the stream uses for that pipeline (the slots
are the pipelines' own, ``stream.pipelines.slots()``; ``forecast@1h`` is the forecast slot of one
bar interval); every other model is reachable by name (``finstream score --model NAME``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

MANIFEST_SCHEMA = 1
_task_vocabulary: Callable[[], Collection[str]] | None = None


def use_task_vocabulary(tasks: Callable[[], Collection[str]]) -> None:
    """Name the tasks a card may have. The pipelines declare theirs (``stream.pipelines`` installs
    its ``tasks``), so a new pipeline's task needs no list here; the pure core cannot import them."""
    global _task_vocabulary
    _task_vocabulary = tasks


def known_tasks() -> frozenset[str] | None:
    """The tasks a card may have (None: no vocabulary installed, i.e. ``stream.pipelines`` not imported)."""
    return None if _task_vocabulary is None else frozenset(_task_vocabulary())


class ManifestError(ValueError):
    pass


@dataclass(slots=True)
class TensorSpec:
    name: str
    shape: list  # None for dynamic dimensions
    dtype: str = "float32"
    features: list[str] = field(default_factory=list)  # feature order along the last axis
    meaning: list[str] = field(default_factory=list)  # for outputs: what each column is


@dataclass(slots=True)
class ModelCard:
    name: str
    task: str
    family: str  # ar, lstm, conv1d, logistic, mlp, linear, item_cf, content, two_tower, ...
    version: str
    file: str  # relative to the manifest's directory
    sha256: str
    opset: int
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    normalisation: dict = field(default_factory=dict)  # e.g. {"returns": {"mean":..,"std":..,"clip":..}}
    reference_distribution: dict = field(default_factory=dict)  # per feature: {"quantiles": [...], "probs": [...]}
    metrics: dict = field(default_factory=dict)  # hold-out metrics
    data_fingerprint: str = ""
    threshold: float | None = None  # alert threshold for risk models
    baseline: list[float] = field(default_factory=list)  # reference row for reason codes (occlusion)
    feature_labels: dict[str, str] = field(default_factory=dict)  # feature -> plain words
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelCard:
        try:
            d = dict(d)
            d["inputs"] = [TensorSpec(**t) for t in d["inputs"]]
            d["outputs"] = [TensorSpec(**t) for t in d["outputs"]]
            card = cls(**d)
        except (KeyError, TypeError) as exc:
            raise ManifestError(f"model card {d.get('name', '?')!r} is malformed: {exc}") from None
        known = known_tasks()
        if known is not None and card.task not in known:
            raise ManifestError(
                f"model {card.name!r} has unknown task {card.task!r} (known: {', '.join(sorted(known))})"
            )
        return card

    @property
    def features(self) -> list[str]:
        return self.inputs[0].features


@dataclass(slots=True)
class Manifest:
    models: dict[str, ModelCard] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    generated_at: str = ""

    def add(self, card: ModelCard) -> None:
        self.models[card.name] = card

    def default(self, slot: str) -> ModelCard:
        if slot not in self.defaults:
            raise ManifestError(f"manifest names no default model for {slot!r}")
        return self.get(self.defaults[slot])

    def get(self, name: str) -> ModelCard:
        try:
            return self.models[name]
        except KeyError:
            raise ManifestError(f"no model named {name!r} in the manifest (have: {sorted(self.models)})") from None

    def to_dict(self) -> dict:
        return {
            "schema": MANIFEST_SCHEMA,
            "generated_at": self.generated_at or datetime.now(UTC).isoformat(timespec="seconds"),
            "defaults": dict(sorted(self.defaults.items())),
            "models": {k: self.models[k].to_dict() for k in sorted(self.models)},
        }

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        if d.get("schema") != MANIFEST_SCHEMA:
            raise ManifestError(f"unsupported manifest schema {d.get('schema')!r}")
        m = cls(
            {k: ModelCard.from_dict(v) for k, v in d.get("models", {}).items()},
            dict(d.get("defaults", {})),
            d.get("generated_at", ""),
        )
        for slot, name in m.defaults.items():
            if name not in m.models:
                raise ManifestError(f"default for {slot!r} names missing model {name!r}")
        return m


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(model_dir: Path) -> Manifest:
    path = Path(model_dir) / "manifest.json"
    try:
        raw = path.read_text()
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}: run `finstream train` first") from None
    try:
        return Manifest.from_dict(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path} is not valid JSON: {exc}") from None


def write_manifest(manifest: Manifest, model_dir: Path) -> Path:
    """Write atomically (tmp + rename) so a worker polling the file never reads half of it."""
    path = Path(model_dir) / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=False) + "\n")
    tmp.replace(path)
    return path
