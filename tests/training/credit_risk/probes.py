"""What the tests look into a model with: an ONNX file's inputs and outputs, and a credit set that
records which rows every encoding was fitted on."""

from __future__ import annotations

import numpy as np
import onnx

from training.data import credit


def onnx_io(path):
    g = onnx.load(str(path)).graph
    init = {i.name for i in g.initializer}
    dims = lambda v: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]  # noqa: E731
    return ({i.name: dims(i) for i in g.input if i.name not in init}, {o.name: dims(o) for o in g.output})


class Spy(credit.CreditSet):
    """Records every fitted encoding's rows, and which encoding each feature matrix was built from."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.fits, self.encodings, self.used = [], [], []

    def fit_encoding(self, rows=None, log=None):
        self.fits.append(None if rows is None else set(np.asarray(rows).tolist()))
        self.encodings.append(super().fit_encoding(rows, log))
        return self.encodings[-1]

    def features(self, enc=None):
        self.used.append(enc)
        return super().features(enc)


def spy(cs) -> Spy:
    return Spy(**{k: getattr(cs, k) for k in cs.__dataclass_fields__})
