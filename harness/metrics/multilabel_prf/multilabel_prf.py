"""Multi-label precision, recall, F1 and F2, macro- and micro-averaged, as an ``evaluate`` metric module.

Load it by path (no network): ``evaluate.load("harness/metrics/multilabel_prf")``.  Predictions are 0/1
(threshold the probabilities at 0.5 first), references multi-hot; every class counts in the macro average,
and a 0/0 ratio is 0 (scikit-learn's ``zero_division=0``).  Table 1 of the paper reports these eight numbers.
``compute(..., per_class=True)`` adds ``per_class``: each class's support (test positives), predicted positives,
precision, recall, F1 and F2, in class order (scikit-learn's ``average=None``).
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Macro and micro precision, recall, F1 and F2 for multi-label classification (zero_division=0)."
_KWARGS = """
Args:
    predictions: list of 0/1 vectors, one per sample.
    references: list of 0/1 vectors (multi-hot), one per sample.
    per_class: also return each class's numbers (default False).
Returns:
    macro_precision, macro_recall, macro_f1, macro_f2, micro_precision, micro_recall, micro_f1, micro_f2;
    with per_class, per_class: {support, predicted, precision, recall, f1, f2}, lists in class order.
"""


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _fbeta(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float) -> np.ndarray:
    b2 = beta * beta
    return _ratio((1 + b2) * tp, (1 + b2) * tp + b2 * fn + fp)


def counts(predictions: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, false positives and false negatives per class, from 0/1 arrays (samples, classes)."""
    pred, ref = np.asarray(predictions).astype(bool), np.asarray(references).astype(bool)
    return (pred & ref).sum(axis=0), (pred & ~ref).sum(axis=0), (~pred & ref).sum(axis=0)


def class_scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, list[float] | list[int]]:
    """Each class's support, predicted positives, precision, recall, F1 and F2, in class order, from its
    :func:`counts`."""
    return {
        "support": [int(v) for v in tp + fn],
        "predicted": [int(v) for v in tp + fp],
        "precision": _ratio(tp, tp + fp).tolist(),
        "recall": _ratio(tp, tp + fn).tolist(),
        "f1": _fbeta(tp, fp, fn, 1.0).tolist(),
        "f2": _fbeta(tp, fp, fn, 2.0).tolist(),
    }


def scores(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, float]:
    """The eight numbers from the per-class :func:`counts`."""
    out = {}
    for avg, (t, p, n) in {"macro": (tp, fp, fn), "micro": (tp.sum(), fp.sum(), fn.sum())}.items():
        out[f"{avg}_precision"] = float(np.mean(_ratio(t, t + p)))
        out[f"{avg}_recall"] = float(np.mean(_ratio(t, t + n)))
        out[f"{avg}_f1"] = float(np.mean(_fbeta(t, p, n, 1.0)))
        out[f"{avg}_f2"] = float(np.mean(_fbeta(t, p, n, 2.0)))
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class MultilabelPrf(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int8")),
                    "references": datasets.Sequence(datasets.Value("int8")),
                }
            ),
        )

    def _compute(self, predictions: list, references: list, per_class: bool = False) -> dict[str, Any]:
        tallies = counts(np.asarray(predictions), np.asarray(references))  # one pass over the predictions
        out: dict[str, Any] = dict(scores(*tallies))
        if per_class:
            out["per_class"] = class_scores(*tallies)
        return out
