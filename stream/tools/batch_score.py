"""``finstream score``: score a CSV through the manifest's model, the way the stream does.

Same model loading (SHA-256 checked), same onnxruntime session options, same reason-code plan.
Input columns are the model's features by their manifest names (extra columns are ignored);
models trained on one-hot categoricals also accept the raw columns (``extra.encoding``).
A row that cannot be scored gets an ``error`` column with the reason; the others still score.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from stream.core.manifest import ModelCard, read_manifest
from stream.core.reasons import score_with_reasons

RISK_TASKS = {"transaction_risk", "credit_default"}


class ScoreError(ValueError):
    pass


def _number(v) -> float:
    x = float(v)
    if not math.isfinite(x):
        raise ValueError("not finite")
    return x


def encode_row(row: dict, card: ModelCard) -> list[float]:
    """One CSV row -> the model's feature vector, or ValueError naming the bad column.

    Applies the training-time cleaning recorded in ``extra.encoding``: blanks take the stored fill
    value, numeric values are winsorised to the stored bounds, categoricals are one-hot encoded.
    """
    enc = card.extra.get("encoding") or {}
    categorical: dict = enc.get("categorical", {})
    fill: dict = enc.get("fill", {})
    clip: dict = enc.get("clip", {})

    def cell(col: str):
        v = row.get(col)
        if v in ("", None) and col in fill:
            return fill[col]
        return v

    out = []
    for f in card.features:
        col, eq, level = f.partition("=")
        if eq and col in categorical:
            value = cell(col)
            if value in ("", None):
                raise ValueError(f"missing value for column {col!r}")
            if value not in categorical[col]:
                raise ValueError(f"column {col!r}: unknown level {value!r}")
            out.append(1.0 if value == level else 0.0)
            continue
        value = cell(f)
        if value in ("", None):
            raise ValueError(f"missing value for feature {f!r}")
        try:
            x = _number(value)
        except ValueError:
            raise ValueError(f"column {f!r}: {value!r} is not a number") from None
        if f in clip:
            lo, hi = clip[f]
            x = min(max(x, lo), hi)
        out.append(x)
    return out


def check_columns(header: list[str], card: ModelCard) -> None:
    enc = (card.extra.get("encoding") or {}).get("categorical", {})
    needed = {f.partition("=")[0] if "=" in f and f.partition("=")[0] in enc else f for f in card.features}
    missing = sorted(needed - set(header))
    if missing:
        raise ScoreError(
            f"input lacks {len(missing)} column(s) the model {card.name!r} needs: {missing[:10]}"
            + (" …" if len(missing) > 10 else "")
        )


def score_rows(model, rows: list[dict], batch: int = 4096) -> list[dict]:
    card = model.card
    if len(card.inputs) != 1 or len(card.inputs[0].shape) != 2:
        raise ScoreError(
            f"model {card.name!r} ({card.task}) does not take a feature row; "
            "batch scoring supports row models (risk, credit, propensity)"
        )
    results: list[dict] = [{} for _ in rows]
    good: list[int] = []
    x_rows: list[list[float]] = []
    for i, row in enumerate(rows):
        try:
            x_rows.append(encode_row(row, card))
            good.append(i)
        except ValueError as exc:
            results[i] = {"score": "", "error": str(exc)}
    with_reasons = card.task in RISK_TASKS and card.baseline
    for start in range(0, len(good), batch):
        idx = good[start : start + batch]
        x = np.asarray(x_rows[start : start + batch], dtype=np.float32)
        if with_reasons:
            scores, reasons = score_with_reasons(
                lambda b: model.run({card.inputs[0].name: b})[0], x, card.baseline, card.features, card.feature_labels
            )
        else:
            scores = np.asarray(model.run({card.inputs[0].name: x})[0], dtype=np.float64).reshape(len(x), -1)[:, 0]
            reasons = [[] for _ in idx]
        for i, sc, why in zip(idx, scores, reasons):
            r = {"score": f"{float(sc):.6f}", "error": ""}
            if with_reasons:
                r.update({f"reason_{k + 1}": (why[k].text if k < len(why) else "") for k in range(3)})
                if card.threshold is not None:
                    r["alert"] = str(int(float(sc) >= card.threshold))
            results[i] = r
    return results


def score_file(model_dir: Path, model_name: str, input: Path, output: Path) -> dict:
    from stream.serving.models import load_model

    card = read_manifest(model_dir).get(model_name)
    model = load_model(card, model_dir)
    with open(input, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        check_columns(header, card)
        rows = list(reader)
    results = score_rows(model, rows)
    extra_cols = list(dict.fromkeys(k for r in results for k in r))
    kept = [c for c in header if c not in extra_cols]
    with open(output, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(kept + extra_cols + ["model", "model_version"])
        for row, r in zip(rows, results):
            w.writerow([row[c] for c in kept] + [r.get(c, "") for c in extra_cols] + [card.name, card.version])
    return {"rows": len(rows), "errors": sum(1 for r in results if r.get("error")), "model": card.name}


def main(model: str, input: Path, output: Path) -> None:
    import typer
    from rich.console import Console

    from stream.core.manifest import ManifestError
    from stream.serving.models import ModelRefused
    from stream.settings import get_settings

    console = Console(stderr=True)
    try:
        summary = score_file(get_settings().model_dir, model, input, output)
    except (ScoreError, ManifestError, ModelRefused) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"scored {summary['rows']} rows with {summary['model']} -> {output}"
        + (f" ({summary['errors']} rows with errors, see the 'error' column)" if summary["errors"] else "")
    )
