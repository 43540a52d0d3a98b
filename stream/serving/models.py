"""Model registry: ONNX sessions for the manifest's served slots, checked and hot-reloaded.

A file is used only if its SHA-256 matches the manifest and onnxruntime loads it. A new version
in the manifest is swapped in between batches (no event is lost or scored twice; each output
names the version that scored it). A model that fails to load or to verify is refused: the
previous version keeps serving and a ``model-events`` record says why.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from stream.core.manifest import Manifest, ManifestError, ModelCard, read_manifest, sha256_file

log = logging.getLogger(__name__)


def session_options() -> ort.SessionOptions:
    """Small models on a busy worker: one thread, no spinning (``run`` releases the GIL)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return so


ROW_ALIGN = 16


class ModelRefused(RuntimeError):
    pass


@dataclass
class ServedModel:
    card: ModelCard
    session: ort.InferenceSession

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def version(self) -> str:
        return self.card.version

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Score a batch; each row's result is bit-for-bit independent of the batch around it.

        onnxruntime's kernels take other code paths for the last few rows of a batch, so the same
        row can differ in the last bits between batch sizes (seen: 2e-9 on the LSTM). Padding every
        call to a multiple of ``ROW_ALIGN`` rows makes a replayed event score to the same bytes,
        whatever batch it lands in after a crash.
        """
        n = len(next(iter(feeds.values())))
        pad = (-n) % ROW_ALIGN
        if pad:
            feeds = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), dtype=v.dtype)]) for k, v in feeds.items()}
        return [o[:n] for o in self.session.run(None, feeds)]


def load_model(card: ModelCard, model_dir: Path) -> ServedModel:
    path = Path(model_dir) / card.file
    if not path.is_file():
        raise ModelRefused(f"{card.name} v{card.version}: file {path} is missing")
    digest = sha256_file(path)
    if digest != card.sha256:
        raise ModelRefused(
            f"{card.name} v{card.version}: SHA-256 mismatch (manifest {card.sha256[:12]}…, file {digest[:12]}…)"
        )
    try:
        sess = ort.InferenceSession(str(path), sess_options=session_options(), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several types for corrupt graphs
        raise ModelRefused(f"{card.name} v{card.version}: onnxruntime could not load it: {exc}") from None
    declared = [t.name for t in card.inputs]
    actual = [i.name for i in sess.get_inputs()]
    if sorted(declared) != sorted(actual):
        raise ModelRefused(f"{card.name} v{card.version}: inputs {actual} do not match the manifest's {declared}")
    return ServedModel(card, sess)


class ModelRegistry:
    """The served model per slot, reloaded when the manifest file changes."""

    def __init__(self, model_dir: Path, slots: tuple[str, ...]):
        self.model_dir = Path(model_dir)
        self.slots = slots
        self.served: dict[str, ServedModel] = {}
        self.events: list[dict] = []  # model-events records waiting to be published
        self._stamp: tuple | None = None
        self.reload(force=True)
        missing = [s for s in slots if s not in self.served]
        if missing:
            raise ManifestError(f"no loadable model for {missing}; see the log and `finstream train`")

    def require(self, slots) -> None:
        """Serve these slots too (e.g. ``forecast@1h``, known only once the settings are read);
        fails like the constructor when one has no loadable model."""
        extra = [s for s in slots if s not in self.slots]
        if not extra:
            return
        self.slots = (*self.slots, *extra)
        self.reload(force=True)
        missing = [s for s in extra if s not in self.served]
        if missing:
            raise ManifestError(f"no loadable model for {missing}; see the log and `finstream train`")

    def _manifest_stamp(self) -> tuple | None:
        try:
            st = os.stat(self.model_dir / "manifest.json")
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def maybe_reload(self) -> None:
        """Cheap enough to call before every batch (one ``stat``); the worker also calls it on a
        timer (``model_poll_s``) so a refused model is reported while the stream is idle."""
        if self._manifest_stamp() != self._stamp:
            self.reload()

    def reload(self, force: bool = False) -> None:
        self._stamp = self._manifest_stamp()
        try:
            manifest: Manifest = read_manifest(self.model_dir)
        except ManifestError as exc:
            self._refuse("manifest", None, str(exc))
            return
        for slot in self.slots:
            try:
                card = manifest.default(slot)
            except ManifestError as exc:
                self._refuse(slot, None, str(exc))
                continue
            current = self.served.get(slot)
            if (
                not force
                and current
                and (current.name, current.version, current.card.sha256) == (card.name, card.version, card.sha256)
            ):
                continue
            try:
                self.served[slot] = load_model(card, self.model_dir)
            except ModelRefused as exc:
                self._refuse(slot, card, str(exc))
                continue
            log.info("serving %s for %s (version %s)", card.name, slot, card.version)
            self.events.append(
                {
                    "event": "model_loaded",
                    "slot": slot,
                    "model": card.name,
                    "version": card.version,
                    "sha256": card.sha256,
                    "ts": int(time.time() * 1000),
                }
            )

    def _refuse(self, slot: str, card: ModelCard | None, reason: str) -> None:
        keep = self.served.get(slot)
        log.error(
            "model refused for %s: %s; still serving %s",
            slot,
            reason,
            f"{keep.name} v{keep.version}" if keep else "nothing",
        )
        self.events.append(
            {
                "event": "model_refused",
                "slot": slot,
                "reason": reason,
                "model": card.name if card else None,
                "version": card.version if card else None,
                "still_serving": {"model": keep.name, "version": keep.version} if keep else None,
                "ts": int(time.time() * 1000),
            }
        )

    def take_events(self) -> list[dict]:
        out, self.events = self.events, []
        return out

    def __getitem__(self, slot: str) -> ServedModel:
        return self.served[slot]
