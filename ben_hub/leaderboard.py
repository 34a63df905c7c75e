"""The benchmark leaderboard: run JSONs -> the paper's Table 1, Fig. 5, the card section, model cards.

Table 1 layout: one row per (model, configuration), eight columns (macro and micro precision, recall, F1,
F2 on test), each ``mean ± std`` over seeds (sample standard deviation, 0 for a single seed; the seed count
is a column).  Everything is recomputed from the stored ``run.json`` files, so the table is reproducible.

Runs that recorded each class's test numbers (``test_per_class``) also give the paper's question about rare labels
an answer: macro F1 over the rarest, middle and most frequent third of the classes (ranked by positives in the
configuration's training split), the classes never predicted, a per-class table and a plot of F1 against training
positives (``per_class.{md,csv,json}``, ``per_class_f1.png``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from .errors import RunError
from .repo import SHARED_TEST, SHARED_VALIDATION
from .shards import save_png, write_json_atomic, write_text_atomic
from .space import reported_full_disk

METRICS = ("macro_precision", "macro_recall", "macro_f1", "macro_f2",
           "micro_precision", "micro_recall", "micro_f1", "micro_f2")  # fmt: skip
HEADERS = ("macro P", "macro R", "macro F1", "macro F2", "micro P", "micro R", "micro F1", "micro F2")
TABLE_HEAD = ("| model | config | seeds | " + " | ".join(HEADERS) + " |", "|---|---|---:|" + "---:|" * len(HEADERS))
MODEL_NAMES = {"shortcnn": "ShortCNN", "inception_v3": "InceptionV3"}
PUBLISHED: dict[tuple[str, str], tuple[int, tuple[float, ...]]] = {
    ("shortcnn", "original"): (10, (0.148, 0.133, 0.130, 0.130, 0.378, 0.378, 0.378, 0.378)),
    ("shortcnn", "resampled"): (10, (0.377, 0.251, 0.287, 0.263, 0.567, 0.503, 0.533, 0.514)),
    ("inception_v3", "original"): (1, (0.021, 0.004, 0.005, 0.004, 0.422, 0.016, 0.031, 0.020)),
    ("inception_v3", "resampled"): (1, (0.405, 0.182, 0.207, 0.189, 0.712, 0.506, 0.591, 0.537)),
}
"""Table 1 of Verlynde, Mian and Yan (BigEarthNet v1.0, 43 classes; ShortCNN: mean of 10 seeds, InceptionV3: one
ImageNet-pretrained run), in :data:`METRICS` order, for comparison beside the runs."""


REQUIRED = ("model", "dataset_config", "seed", "test", "weights_origin", "history", "best_epoch")
"""Keys of a ``run.json`` that the table, the plot and the model cards read."""
SETTINGS = ("bands", "labels", "epochs", "learning_rate", "batch", "momentum", "threshold", "max_batches", "weights")
"""Fields of a run's config that change what it measures: the runs averaged in one row should agree on them (the
seed aside; compilation, kernels, caches and evaluation batch change only how fast a run goes)."""
PUSHED = ("best.pt", "config.json", "run.json")
"""A run's files in its model repository (beside the generated ``README.md``)."""
RERUN = "delete it and launch that run again (harness/train.py resumes from the run's last checkpoint)"
THIRDS = ("rarest third", "middle third", "most frequent third")
CLASS_METRICS = ("precision", "recall", "f1", "f2")
CLASS_FILES = ("per_class.md", "per_class.csv", "per_class.json", "per_class_f1.png")
"""What :func:`write_outputs` writes from runs' ``test_per_class``; removed when no run has it (no stale table)."""
PICTURES = {"losses.png": "Loss per epoch, original vs resampled", "per_class_f1.png": "Test F1 per class against "
            "its positives in the training split"}  # fmt: skip
"""The plots :func:`publish_to_repo` puts beside ``leaderboard.json``, with the card's caption of each."""
LOSS_LINES = (("val_loss", "-"), ("train_loss", ":"), ("shared_val_loss", "--"))
"""The losses of ``run.json``'s ``history`` that ``losses.png`` draws, with their line styles."""
SCORE_COLUMNS = tuple((metric, header, "+.3f") for metric, header in zip(METRICS, HEADERS, strict=True))
"""Table 1's columns in a difference table: (key, header, format of a difference)."""
FIT_COLUMNS = (("rise", "risen by the last epoch", "+.1%"), ("gap", "val - train at best", "+.4f"),
               ("shared_val", "shared val loss", "+.4f"), ("best_epoch", "best epoch", "+.1f"))  # fmt: skip
""":func:`overfitting`'s numbers that mean the same in both configurations, in a difference table (the lowest
validation loss is left out: each configuration's is over its own validation split)."""


def read_run(path: Path) -> dict[str, Any]:
    """One ``run.json``, checked for what the leaderboard reads.

    Raises:
        RunError: naming the file, when it is not JSON or lacks a key or a test metric.
    """
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise RunError(f"{path} cannot be read as a run's result ({err}): {RERUN}") from None
    missing = [k for k in REQUIRED if k not in run] if isinstance(run, dict) else list(REQUIRED)
    if not missing and isinstance(run["test"], dict):
        missing = [f"test.{m}" for m in METRICS if m not in run["test"]]
    if missing:
        raise RunError(f"{path} is not a finished run's result of harness/train.py (no {', '.join(missing)}): {RERUN}")
    return run


def run_files(runs_dir: Path) -> list[Path]:
    """The ``*/run.json`` files under ``runs_dir``, sorted.

    Raises:
        RunError: when there is none.
    """
    paths = sorted(runs_dir.glob("*/run.json"))
    if not paths:
        raise RunError(
            f"no finished runs in {runs_dir} (no */run.json): pass the folder that harness/train.py --out or "
            "harness/sweep.py --out wrote the runs to"
        )
    return paths


def unfinished(runs_dir: Path) -> list[str]:
    """The run folders under ``runs_dir`` that harness/train.py started (``config.json``) and has not finished
    (no ``run.json``): running, killed, or failed; the table leaves them out."""
    return sorted(p.parent.name for p in runs_dir.glob("*/config.json") if not (p.parent / "run.json").exists())


def collect(runs_dir: Path) -> list[dict[str, Any]]:
    """Every finished run (``*/run.json``) under ``runs_dir``, sorted by model, config, seed.

    Raises:
        RunError: when there is none; when a ``run.json`` cannot be read (:func:`read_run`); when two are the
            same seed of one model on one configuration (a row's mean would count that seed twice).
    """
    paths = run_files(runs_dir)
    runs: list[dict[str, Any]] = []
    seen: dict[tuple[str, str, int], Path] = {}
    for path in paths:
        run = read_run(path)
        key = (run["model"], run["dataset_config"], run["seed"])
        if key in seen:
            raise RunError(
                f"{seen[key]} and {path} are both seed {run['seed']} of {run['model']} on {run['dataset_config']}: "
                f"move one of them out of {runs_dir} (a row's mean would count that seed twice)"
            )
        seen[key] = path
        runs.append(run)
    return sorted(runs, key=lambda r: (r["model"], r["dataset_config"], r["seed"]))


def mixed_settings(members: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The :data:`SETTINGS` on which ``members`` disagree: field -> its distinct values (as JSON; numbers in
    numeric order, before the others)."""
    found = {}
    for name in SETTINGS:
        values = {json.dumps(run.get("config", {}).get(name), sort_keys=True) for run in members}
        if len(values) > 1:
            found[name] = sorted(values, key=numbers_first)
    return found


def numbers_first(text: str) -> tuple[int, float, str]:
    """Sort key of a JSON value: numbers by value (``5`` before ``100``), then anything else by its text."""
    value = json.loads(text)
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return (0, float(value), "") if number else (1, 0.0, text)


def grouped(items: list[dict[str, Any]], config_key: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Runs (``config_key="dataset_config"``) or rows (``"config"``) by (model, configuration), in key order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for item in items:
        groups.setdefault((item["model"], item[config_key]), []).append(item)
    return dict(sorted(groups.items()))


def class_records(members: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The seeds' ``test_per_class`` records, or ``None`` when one seed did not record its classes."""
    records = [run.get("test_per_class") for run in members]
    return [r for r in records if r] if all(records) else None


def table(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of Table 1: model, config, seeds, weights origin, and mean/std of each metric."""
    groups = grouped(runs, "dataset_config")
    rows = []
    for (model, config), members in groups.items():
        row: dict[str, Any] = {"model": model, "config": config, "seeds": sorted(r["seed"] for r in members),
                               "weights": sorted({r["weights_origin"] for r in members})}  # fmt: skip
        row["data"] = sorted({r.get("dataset", {}).get("manifest_sha256") for r in members} - {None})
        spatial = members[0].get("dataset", {}).get("spatial") or {}
        row["test_touching"] = spatial.get("touching", {}).get(config, {}).get("test")
        row["mixed"] = mixed_settings(members)
        hours = [r.get("device_hours") for r in members]
        row["device_hours"] = None if None in hours else sum(hours)  # only when every seed recorded its hours
        for metric in METRICS:
            row[metric] = spread([r["test"][metric] for r in members])
        if frequency := by_frequency(members):
            row["by_frequency"] = frequency
        if shared := shared_test(members):
            row["shared_test"] = shared
        row["overfitting"] = overfitting(members)
        rows.append(row)
    return rows


def overfitting(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's Fig. 5 in numbers, from each seed's ``history``, each ``mean``/``std`` over the seeds: the best
    epoch (1-based: the epoch whose validation loss is lowest, the one scored on test), that lowest validation loss,
    how far the validation loss had risen above it by the last epoch (``rise``: last / lowest - 1; 0 when the last
    epoch is the best), the validation loss minus the training loss at the best epoch (``gap``) and, where every seed
    recorded it, the best epoch's loss over the validation patches both configurations share (``shared_val``: the
    same patches for both); ``epochs`` the most any seed trained and ``still_falling`` the seeds whose best epoch was
    their last."""
    best = [run["best_epoch"] for run in members]
    val = [[epoch["val_loss"] for epoch in run["history"]] for run in members]
    train = [[epoch["train_loss"] for epoch in run["history"]] for run in members]
    lowest = [losses[b] for losses, b in zip(val, best, strict=True)]
    shared = [run["history"][b].get("shared_val_loss") for run, b in zip(members, best, strict=True)]
    return {
        "epochs": max(len(losses) for losses in val),
        "best_epoch": spread([b + 1.0 for b in best]),
        "lowest_val": spread(lowest),
        "rise": spread([losses[-1] / low - 1 if low > 0 else 0.0 for losses, low in zip(val, lowest, strict=True)]),
        "gap": spread([v[b] - t[b] for v, t, b in zip(val, train, best, strict=True)]),
        "still_falling": sum(1 for losses, b in zip(val, best, strict=True) if b == len(losses) - 1),
        "shared_val": None if None in shared else spread(shared),
    }


def shared_test(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Each metric's mean and std over the seeds on the test patches both configurations hold out (``run.json``'s
    ``test_shared``) and their count(s); ``None`` when a seed did not record them or the cell was empty."""
    records = [run.get("test_shared") or {} for run in members]
    if not all(record.get("metrics") for record in records):
        return None
    return {"patches": sorted({record["patches"] for record in records}),
            **{metric: spread([record["metrics"][metric] for record in records]) for metric in METRICS}}  # fmt: skip


def spread(values: list[float]) -> dict[str, float]:
    """Mean and sample standard deviation (0 for one value) of one number over seeds."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}


def ranked_thirds(record: dict[str, Any]) -> list[list[int]]:
    """The classes with a test positive, ranked by positives in the training split (fewest first; ties by class
    index) and cut in three near-equal parts (43 classes: 15, 14, 14), rarest first.  A class without a test
    positive is left out: its F1 is 0 by convention whatever a model predicts."""
    present = [i for i, n in enumerate(record["support"]) if n > 0]
    ranked = sorted(present, key=lambda i: (record["train_positives"][i], i))
    size, extra = divmod(len(ranked), 3)
    bounds = [0, size + (extra > 0), 2 * size + (extra > 0) + (extra > 1), len(ranked)]
    return [ranked[bounds[k] : bounds[k + 1]] for k in range(3)]


def by_frequency(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Macro F1 over each third of :func:`ranked_thirds` and the count of classes with a test positive never
    predicted on test, each ``mean``/``std`` over the seeds; ``None`` when a seed did not record its classes."""
    records = class_records(members)
    if records is None:
        return None
    thirds = [ranked_thirds(rec) for rec in records]
    f1 = [[statistics.fmean(rec["f1"][i] for i in part) if part else 0.0 for part in parts]
          for rec, parts in zip(records, thirds, strict=True)]  # fmt: skip
    never = [sum(1 for part in parts for i in part if rec["predicted"][i] == 0)
             for rec, parts in zip(records, thirds, strict=True)]  # fmt: skip
    return {
        "classes": [len(part) for part in thirds[0]],
        "f1": [spread([seed[k] for seed in f1]) for k in range(3)],
        "never_predicted": spread([float(n) for n in never]),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """Table 1 of the runs (``mean ± std``; the mean alone for one seed), then the paper's for comparison."""
    lines = list(TABLE_HEAD)
    lines += [table_line(row, row) for row in rows]
    lines += hours_lines(rows) + comparison_lines(rows) + shared_lines(rows) + leakage_lines(rows)
    lines += frequency_lines(rows) + overfitting_lines(rows) + fit_comparison_lines(rows)
    for row in rows:
        if len(row.get("data", [])) > 1:  # a mean over seeds is only one experiment on one build
            lines += ["", f"Warning: {MODEL_NAMES.get(row['model'], row['model'])} {row['config']} mixes runs on "
                          f"{len(row['data'])} different builds (manifest.json sha256 "
                          f"{', '.join(d[:12] for d in row['data'])})."]  # fmt: skip
        if row.get("mixed"):
            differ = "; ".join(f"{name} {', '.join(values)}" for name, values in row["mixed"].items())
            lines += ["", f"Warning: {MODEL_NAMES.get(row['model'], row['model'])} {row['config']} averages runs "
                          f"with different settings ({differ})."]  # fmt: skip
    caption = "Published (the paper's Table 1, BigEarthNet v1.0, 43 classes; its InceptionV3 was ImageNet-pretrained):"
    lines += ["", caption, "", *TABLE_HEAD]
    for (model, config), (seeds, values) in PUBLISHED.items():
        lines.append(f"| {MODEL_NAMES[model]} | {config} | {seeds} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def table_line(row: dict[str, Any], scores: dict[str, Any]) -> str:
    """A row of :data:`TABLE_HEAD`: the row's model, configuration and seeds, ``scores``' metrics (mean ± std)."""
    several = len(row["seeds"]) > 1
    return model_line(row, [str(len(row["seeds"])), *(mean_std(scores[m], several, ".3f") for m in METRICS)])


def hours_lines(rows: list[dict[str, Any]]) -> list[str]:
    """A sentence with each row's device-hours and their total (runs that recorded them), or nothing."""
    timed = [r for r in rows if r.get("device_hours") is not None]
    if not timed:
        return []
    each = "; ".join(f"{MODEL_NAMES.get(r['model'], r['model'])} {r['config']} {hours_text(r['device_hours'])}"
                     for r in timed)  # fmt: skip
    total = hours_text(sum(r["device_hours"] for r in timed))
    return ["", f"Device-hours (each launch from its process's start to its last checkpoint or result: loading, "
                f"compilation, epochs, test; times the processes; all seeds): {each}; total {total}."]  # fmt: skip


def leakage_lines(rows: list[dict[str, Any]]) -> list[str]:
    """A sentence with each configuration's share of test patches beside (or, reBEN, on another date of) a patch of
    another split, from the runs' ``dataset.spatial``; nothing when no run recorded it."""
    shares = {row["config"]: row["test_touching"] for row in rows if row.get("test_touching") is not None}
    if not shares:
        return []
    each = ", ".join(f"{config} {share:.1%}" for config, share in shares.items())
    caution = ""
    if len(shares) > 1 and max(shares.values()) - min(shares.values()) > 0.1:
        caution = (
            " These differ: part of a gap between the configurations' scores may come from test "
            "patches whose neighbours were trained on, not from the split's balance (`build --block N`)."
        )
    return ["", f"Test patches beside a patch of another split (the build's stats.json): {each}.{caution}"]


def comparison_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per model with both configurations: each metric's ``resampled - original`` difference of means and, with
    two seeds or more on each side, the two-sided p-value of Welch's t-test over the seeds (:func:`welch_p`), from
    the rows' means, standard deviations and seed counts; nothing when no model has both."""
    pairs = config_pairs(rows)
    if not pairs:
        return []
    return [
        "",
        "resampled - original, difference of the means (p: Welch's t-test over the seeds, two-sided; each "
        "configuration is scored on its own test split):",
        "",
        *difference_table(pairs, lambda row: row),
    ]


def config_pairs(rows: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(``original`` row, ``resampled`` row) of each model that has both."""
    return [(o, r) for o in rows for r in rows
            if o["model"] == r["model"] and o["config"] == "original" and r["config"] == "resampled"]  # fmt: skip


def difference_table(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]],
    scores: Callable[[dict[str, Any]], dict[str, Any]],
    columns: tuple[tuple[str, str, str], ...] = SCORE_COLUMNS,
) -> list[str]:
    """A markdown table: per pair, each column's ``resampled - original`` difference of the means of
    ``scores(row)[key]`` (``–`` where a side lacks it) and, with two seeds or more on each side, Welch's two-sided
    p; then :func:`holm_note` over the columns tested."""
    lines = ["| model | seeds | " + " | ".join(h for _, h, _ in columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    notes = []
    for original, resampled in pairs:
        seen = [(scores(original).get(key), scores(resampled).get(key), spec) for key, _, spec in columns]
        cells, ps = zip(*(difference_cell(o, r, (original, resampled), spec) for o, r, spec in seen), strict=True)
        seeds = f"{len(resampled['seeds'])} / {len(original['seeds'])}"
        name = MODEL_NAMES.get(original["model"], original["model"])
        lines.append(f"| {name} | {seeds} | {' | '.join(cells)} |")
        notes += holm_note(name, list(ps), [header for _, header, _ in columns])
    return lines + notes


def difference_cell(
    o: dict[str, float] | None, r: dict[str, float] | None, rows: tuple[dict[str, Any], dict[str, Any]], spec: str
) -> tuple[str, float | None]:
    """``+0.120 (p 0.03)``: resampled's mean ``r`` minus original's ``o`` and, with two seeds or more on each side
    (``rows``: the original and resampled rows), Welch's p; ``–`` where a side lacks the value."""
    if not (o and r):
        return "–", None
    seeds_o, seeds_r = (len(row["seeds"]) for row in rows)
    p = welch_p(r["mean"], r["std"], seeds_r, o["mean"], o["std"], seeds_o)
    return format(r["mean"] - o["mean"], spec) + ("" if p is None else f" (p {p:.2g})"), p


def holm_note(name: str, ps: list[float | None], headers: list[str]) -> list[str]:
    """A sentence when a p-value of the columns (``headers``) is below 0.05: the smallest after Holm's adjustment
    over the columns that have one (:func:`holm`), and how many stay below 0.05; nothing otherwise."""
    tested = [(p, header) for p, header in zip(ps, headers, strict=True) if p is not None]
    if not tested or min(p for p, _ in tested) >= 0.05:
        return []
    adjusted = holm([p for p, _ in tested])
    low = min(p for p, _ in tested)
    metric = next(header for p, header in tested if p == low)  # the first in table order
    below = sum(1 for a in adjusted if a < 0.05)
    what = "metrics" if headers == list(HEADERS) else "columns"
    return ["", f"{name}: testing {len(tested)} {what} at once, the smallest p ({metric}, {low:.2g}) is "
                f"{min(adjusted):.2g} after Holm's adjustment; {below} of {len(tested)} stay below 0.05."]  # fmt: skip


def holm(ps: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: the k-th smallest times (m - k + 1), never below
    the one before it in that ranking, at most 1."""
    order = sorted(range(len(ps)), key=ps.__getitem__)
    adjusted, running = [0.0] * len(ps), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def shared_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Table 1 again over the test patches both configurations hold out (:func:`shared_test`), and the
    configurations' differences there: the same patches for both, so a gap is the models', not the test splits'.
    A model whose two configurations trained on different builds (their shared patches differ) is not compared."""
    shown = [row for row in rows if row.get("shared_test")]
    if not shown:
        return []
    counts = ", ".join(str(n) for n in sorted({n for row in shown for n in row["shared_test"]["patches"]}))
    lines = ["", f"On the test patches both configurations hold out (the build's `{SHARED_TEST}` cell, {counts} "
                 "patches; neither configuration trained or chose its epoch on them):", "", *TABLE_HEAD]  # fmt: skip
    lines += [table_line(row, row["shared_test"]) for row in shown]
    pairs = [(o, r) for o, r in config_pairs(shown) if o["data"] == r["data"]]
    if pairs:
        lines += [
            "",
            "resampled - original there (p as above):",
            "",
            *difference_table(pairs, lambda r: r["shared_test"]),
        ]
    if skipped := [MODEL_NAMES.get(o["model"], o["model"]) for o, r in config_pairs(shown) if o["data"] != r["data"]]:
        lines += ["", f"Not compared there: {', '.join(skipped)} (its configurations trained on different builds)."]
    return lines


def welch_p(mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int) -> float | None:
    """Two-sided p-value of Welch's t-test for two means from their sample standard deviations and sizes (scipy's
    ``ttest_ind_from_stats(..., equal_var=False)``); ``None`` with fewer than two values on a side or no spread."""
    if n_a < 2 or n_b < 2:
        return None
    va, vb = std_a * std_a / n_a, std_b * std_b / n_b
    if va + vb == 0:
        return None
    t = (mean_a - mean_b) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va * va / (n_a - 1) + vb * vb / (n_b - 1))
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (modified Lentz), using the
    symmetry I_x(a, b) = 1 - I_(1-x)(b, a) where the fraction converges slowly; for ``x`` in [0, 1]."""
    if x <= 0.0 or x >= 1.0:
        return max(0.0, min(1.0, x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - incomplete_beta(b, a, 1.0 - x)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny, c, d, f = 1e-300, 1.0, 0.0, 1.0
    for i in range(400):  # the fraction 1 / (1 + d1 / (1 + d2 / ...)), its first term 1
        m = i // 2
        if i == 0:
            term = 1.0
        elif i % 2 == 0:
            term = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            term = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + term * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + term / c
        c = c if abs(c) > tiny else tiny
        step = c * d
        f *= step
        if abs(step - 1.0) < 1e-15:
            break
    return front * (f - 1.0)


def frequency_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' macro F1 by label frequency (:func:`by_frequency`) as a table, or nothing when no row has it."""
    shown = [row for row in rows if row.get("by_frequency")]
    if not shown:
        return []
    lines = ["", "Macro F1 by label frequency: the classes with a test positive, ranked by their positives in the "
                 "configuration's training split and cut in thirds (classes in brackets), and how many of them the "
                 "model never predicted on test:", "",
             "| model | config | " + " | ".join(THIRDS) + " | never predicted |",
             "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for row in shown:
        several = len(row["seeds"]) > 1
        frequency = row["by_frequency"]
        cells = [f"{mean_std(value, several, '.3f')} ({n})" if n else "–"  # under 3 classes: a third is empty
                 for value, n in zip(frequency["f1"], frequency["classes"], strict=True)]  # fmt: skip
        never = mean_std(frequency["never_predicted"], several, ".1f" if several else ".0f")
        lines.append(model_line(row, [*cells, f"{never} of {sum(frequency['classes'])}"]))
    return lines


def overfitting_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The rows' :func:`overfitting` as a table (rows from a leaderboard.json written before it are left out)."""
    shown = [row for row in rows if row.get("overfitting")]
    if not shown:
        return []
    lines = ["", "Overfitting (the paper's Fig. 5 in numbers; each configuration's validation loss is over its own "
                 "validation split): the best epoch, its validation loss, how far that loss had risen by the last "
                 "epoch, the validation minus the training loss at the best epoch, the best epoch's loss over the "
                 f"validation patches both configurations share (the `{SHARED_VALIDATION}` cell: the same patches for "
                 "both), and the seeds whose best epoch was their last:", "",
             "| model | config | seeds | epochs | best epoch | lowest val loss | risen by the last epoch | "
             "val - train at best | shared val loss | still falling |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for row in shown:
        fit, several = row["overfitting"], len(row["seeds"]) > 1
        cells = [str(len(row["seeds"])), str(fit["epochs"]),
                 mean_std(fit["best_epoch"], several, ".1f" if several else ".0f"),
                 mean_std(fit["lowest_val"], several, ".4f"), mean_std(fit["rise"], several, "+.1%"),
                 mean_std(fit["gap"], several, ".4f"),
                 mean_std(fit["shared_val"], several, ".4f") if fit.get("shared_val") else "–",
                 f"{fit['still_falling']} of {len(row['seeds'])}"]  # fmt: skip
        lines.append(model_line(row, cells))
    return lines


def fit_comparison_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Per model with both configurations' :func:`overfitting`: the ``resampled - original`` differences of the
    overfitting numbers that mean the same in both (:data:`FIT_COLUMNS`), with Welch's p: the paper's Fig. 5 claim,
    that the resampled split overfits less, tested. The shared validation loss is compared only where both
    configurations trained on one build (the same patches); nothing when no model has both."""
    pairs = [(o, r) for o, r in config_pairs(rows) if o.get("overfitting") and r.get("overfitting")]
    if not pairs:
        return []
    apart = {id(row) for o, r in pairs if o.get("data") != r.get("data") for row in (o, r)}

    def fit(row: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in row["overfitting"].items() if not (k == "shared_val" and id(row) in apart)}

    return [
        "",
        "resampled - original, overfitting (p as above; the rise's difference in percentage points): less overfitting "
        "on `resampled`, the paper's Fig. 5 claim, reads as a lower rise, gap and shared validation loss and a later "
        "best epoch; the shared validation loss is compared where both configurations trained on one build:",
        "",
        *difference_table(pairs, fit, FIT_COLUMNS),
    ]


def mean_std(value: dict[str, float], several: bool, spec: str) -> str:
    """``0.600 ± 0.100``, or the mean alone for one seed; a signed ``spec`` (``+.1%``) signs the mean only."""
    return format(value["mean"], spec) + (f" ± {format(value['std'], spec.lstrip('+'))}" if several else "")


def model_line(row: dict[str, Any], cells: list[str]) -> str:
    """A markdown row of a leaderboard table: the row's model (its display name) and configuration, then ``cells``."""
    return f"| {MODEL_NAMES.get(row['model'], row['model'])} | {row['config']} | {' | '.join(cells)} |"


def hours_text(hours: float) -> str:
    """``0.75``, or below 0.1 h the seconds too (``0.0031 (11 s)``): a short check's runs do not all read 0.00."""
    return f"{hours:.2f}" if hours >= 0.1 else f"{hours:.2g} ({hours * 3600:.0f} s)"


FIT_CSV = ("best_epoch", "lowest_val", "rise", "gap", "shared_val")
""":func:`overfitting`'s spreads in ``leaderboard.csv`` (``fit_*_mean``/``_std``, after its epochs)."""


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Table 1 (each metric's mean and std), device-hours, the shared test patches' Table 1 and the overfitting
    numbers, a row per (model, configuration); a cell is empty where the row lacks the value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    pairs = [(m, s) for m in METRICS for s in ("mean", "std")]
    fits = [(f, s) for f in FIT_CSV for s in ("mean", "std")]
    writer.writerow(["model", "config", "seeds", *[f"{m}_{s}" for m, s in pairs], "device_hours", "shared_patches",
                     *[f"shared_{m}_{s}" for m, s in pairs], "fit_epochs", *[f"fit_{f}_{s}" for f, s in fits],
                     "fit_still_falling"])  # fmt: skip
    for row in rows:
        hours, shared, fit = row.get("device_hours"), row.get("shared_test"), row.get("overfitting")
        writer.writerow([row["model"], row["config"], len(row["seeds"]), *[f"{row[m][s]:.6f}" for m, s in pairs],
                         "" if hours is None else f"{hours:.4f}",
                         *([" ".join(map(str, shared["patches"])), *[f"{shared[m][s]:.6f}" for m, s in pairs]]
                           if shared else [""] * (1 + len(pairs))),
                         *([fit["epochs"], *[f"{fit[f][s]:.6f}" if fit.get(f) else "" for f, s in fits],
                            fit["still_falling"]] if fit else [""] * (2 + len(fits)))])  # fmt: skip
    return buffer.getvalue()


def class_rows(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, configuration, class) of the runs that recorded ``test_per_class`` (a group with a seed
    that did not is left out): the class's positives in the training split and on test (the first seed's build), its
    predicted positives and each of :data:`CLASS_METRICS` as ``mean``/``std`` over the seeds."""
    groups = grouped(runs, "dataset_config")
    rows = []
    for (model, config), members in groups.items():
        records = class_records(members)
        if records is None:
            continue
        first = records[0]
        for i, name in enumerate(first["classes"]):
            row: dict[str, Any] = {
                "model": model, "config": config, "seeds": len(members), "index": i, "class": name,
                "train_positives": first["train_positives"][i], "test_positives": first["support"][i],
                "predicted": spread([float(rec["predicted"][i]) for rec in records]),
            }  # fmt: skip
            for metric in CLASS_METRICS:
                row[metric] = spread([rec[metric][i] for rec in records])
            rows.append(row)
    return rows


def class_markdown(rows: list[dict[str, Any]]) -> str:
    """Per-class test F1 (``mean ± std`` over seeds) of each model and configuration, a column each, one row per
    class, most training positives first (summed over the configurations), beside each configuration's training
    and test positives.  Groups trained with other class lists (43 against 19) get a table each."""
    groups = grouped(rows, "config")
    by_classes: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for key, members in groups.items():
        by_classes.setdefault(tuple(r["class"] for r in members), []).append(key)
    parts = ["Test F1 per class (mean ± std over seeds; `harness/train.py`, threshold 0.5), most training positives "
             "first. Classes without a test positive score 0 whatever a model does.\n"]  # fmt: skip
    for classes, keys in by_classes.items():
        configs = sorted({config for _, config in keys})
        first_of = {config: groups[next(k for k in keys if k[1] == config)] for config in configs}
        order = sorted(range(len(classes)), key=lambda i: (-sum(first_of[c][i]["train_positives"] for c in configs), i))
        head = ["class", *[f"train {c}" for c in configs], *[f"test {c}" for c in configs],
                *[f"{MODEL_NAMES.get(m, m)} {c}" for m, c in keys]]  # fmt: skip
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for i in order:
            cells = [classes[i], *[f"{first_of[c][i]['train_positives']:,}" for c in configs],
                     *[f"{first_of[c][i]['test_positives']:,}" for c in configs],
                     *[mean_std(groups[k][i]["f1"], groups[k][i]["seeds"] > 1, ".3f") for k in keys]]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def class_csv(rows: list[dict[str, Any]]) -> str:
    """:func:`class_rows` as CSV, a line per model, configuration and class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    stats = [f"{m}_{s}" for m in ("predicted", *CLASS_METRICS) for s in ("mean", "std")]
    writer.writerow(["model", "config", "seeds", "index", "class", "train_positives", "test_positives", *stats])
    for row in rows:
        values = [f"{row[m][s]:.6f}" for m in ("predicted", *CLASS_METRICS) for s in ("mean", "std")]
        writer.writerow([row["model"], row["config"], row["seeds"], row["index"], row["class"],
                         row["train_positives"], row["test_positives"], *values])  # fmt: skip
    return buffer.getvalue()


def plot_per_class(rows: list[dict[str, Any]], path: Path) -> None:
    """Test F1 of each class against its positives in the training split (log axis), per model, a colour per
    configuration (error bars: ± one standard deviation over seeds); classes without a training or test positive
    are not drawn."""
    from matplotlib.figure import Figure

    models = sorted({r["model"] for r in rows})
    fig = Figure(figsize=(5.5 * len(models), 4))
    axes = fig.subplots(1, len(models), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for color, config in zip(("C0", "C1", "C2"), ("original", "resampled", "excluded"), strict=True):
            drawn = [r for r in rows if r["model"] == model and r["config"] == config
                     and r["train_positives"] > 0 and r["test_positives"] > 0]  # fmt: skip
            if not drawn:
                continue
            x = [r["train_positives"] for r in drawn]
            y = [r["f1"]["mean"] for r in drawn]
            seeds = drawn[0]["seeds"]
            label = f"{config} ({len(drawn)} classes" + (f", mean of {seeds} seeds)" if seeds > 1 else ")")
            ax.errorbar(x, y, yerr=[r["f1"]["std"] for r in drawn] if seeds > 1 else None, fmt="o", ms=4,
                        color=color, alpha=0.8, capsize=2, label=label)  # fmt: skip
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(MODEL_NAMES.get(model, model))
        ax.set_xlabel("positives in the training split")
        ax.set_ylabel("test F1")
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def plot_losses(runs: list[dict[str, Any]], path: Path) -> None:
    """Fig. 5: validation (and training) loss per epoch, original vs resampled, per model, and the loss over the
    validation patches both configurations share where the runs recorded it: the mean over seeds, shaded ± one
    standard deviation where there are several; a log axis when the losses span over 50x."""
    from matplotlib.figure import Figure  # no pyplot: no backend machinery, no global figure state
    from matplotlib.ticker import MaxNLocator

    models = sorted({r["model"] for r in runs})
    fig = Figure(figsize=(5.5 * len(models), 4))
    axes = fig.subplots(1, len(models), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        drawn: list[float] = []
        for color, config in zip(("C0", "C1"), ("original", "resampled"), strict=True):
            members = [r for r in runs if r["model"] == model and r["dataset_config"] == config]
            if not members:
                continue
            epochs = range(min(len(r["history"]) for r in members))
            for key, style in LOSS_LINES:
                values = [[r["history"][e].get(key) for r in members] for e in epochs]
                if any(None in v for v in values):  # shared_val_loss: runs from before it, or no shared patches
                    continue
                mean = [statistics.fmean(v) for v in values]
                x = [e + 1 for e in epochs]
                name = key.removesuffix("_loss").replace("_", " ")
                label = f"{config} {name}" + (f" (mean of {len(members)})" if len(members) > 1 else "")
                ax.plot(x, mean, style, color=color, label=label)
                if len(members) > 1 and key == "val_loss":  # one band a configuration: three overlap into mud
                    spread = [statistics.stdev(v) for v in values]
                    pairs = list(zip(mean, spread, strict=True))
                    ax.fill_between(x, [m - d for m, d in pairs], [m + d for m, d in pairs], color=color, alpha=0.15)
                drawn += mean
        positive = [v for v in drawn if v > 0]
        if positive and max(positive) > 50 * min(positive):
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(MODEL_NAMES.get(model, model))
        ax.set_xlabel("epoch")
        ax.set_ylabel("BCE loss")
        ax.legend(fontsize=8, handlelength=3)  # long enough handles to tell dotted from solid
    fig.tight_layout()
    save_png(fig, path, dpi=120)


def model_card(run: dict[str, Any], dataset_id: str) -> str:
    """A model card with ``model-index`` metadata (the run's test metrics) for one run."""
    import yaml

    name = f"{run['model']}-{run['dataset_config']}-seed{run['seed']}"
    index = [{"name": name, "results": [{
        "task": {"type": "image-classification", "name": "Multi-label image classification"},
        "dataset": {"type": dataset_id, "name": "Balanced BigEarthNet", "config": run["dataset_config"],
                    "split": "test"},
        "metrics": [{"type": m, "value": round(run["test"][m], 6), "name": m.replace("_", " ")} for m in METRICS],
    }]}]  # fmt: skip
    meta = {"license": "cdla-permissive-1.0", "library_name": "pytorch", "tags": ["remote-sensing", "bigearthnet"],
            "datasets": [dataset_id], "model-index": index}  # fmt: skip
    front = yaml.safe_dump(meta, sort_keys=False)
    return (
        f"---\n{front}---\n\n# {name}\n\n{MODEL_NAMES.get(run['model'], run['model'])} trained on the "
        f"`{run['dataset_config']}` configuration of `{dataset_id}` with ben-hub (seed {run['seed']}, best epoch "
        f"{run['best_epoch']}, weights: {run['weights_origin']}).\n"
        + usage_section(run)
        + shared_section(run)
        + class_section(run)
    )


def shared_section(run: dict[str, Any]) -> str:
    """A model card's scores on the test patches both configurations hold out (``run.json``'s ``test_shared``)."""
    record = run.get("test_shared") or {}
    if not record.get("metrics"):
        return ""
    values = " | ".join(f"{record['metrics'][m]:.3f}" for m in METRICS)
    return (
        f"\n## Test scores on the patches both configurations hold out\n\nThe {record['patches']:,} test patches of "
        f"the dataset's `{record['cell']}` cell, in the test split of `original` and of `resampled`: a model trained "
        "on either configuration is scored on the same patches there.\n\n"
        f"| {' | '.join(HEADERS)} |\n|{'---:|' * len(HEADERS)}\n| {values} |\n"
    )


def class_section(run: dict[str, Any]) -> str:
    """A model card's per-class test scores, from ``run.json``'s ``test_per_class`` (none before it was recorded)."""
    record = run.get("test_per_class")
    if not record:
        return ""
    rows = "".join(
        f"| {name} | {record['train_positives'][i]:,} | {record['support'][i]:,} | {record['predicted'][i]:,} | "
        f"{record['precision'][i]:.3f} | {record['recall'][i]:.3f} | {record['f1'][i]:.3f} |\n"
        for i, name in enumerate(record["classes"])
    )
    return (
        "\n## Test scores per class\n\nIn output order; positives in the configuration's training split and on "
        "test, positives predicted on test; a class without a test positive scores 0.\n\n"
        "| class | train positives | test positives | predicted | precision | recall | F1 |\n"
        f"|---|---:|---:|---:|---:|---:|---:|\n{rows}"
    )


def usage_section(run: dict[str, Any]) -> str:
    """A model card's inputs, outputs and loading code, from ``run.json``'s ``inputs`` (runs of ben-hub 0.x before
    it recorded them have none: the section is left out)."""
    spec = run.get("inputs")
    if not spec:
        return ""
    rows = "".join(f"| `{b}` | {m:.4f} | {s:.4f} |\n" for b, m, s in zip(spec["bands"], spec["mean"], spec["std"],
                                                                          strict=True))  # fmt: skip
    classes = "".join(f"{i}. {name}\n" for i, name in enumerate(spec["classes"]))
    n = len(spec["bands"])
    return (
        f"\n## Inputs\n\nfloat32 `(batch, {n}, {spec['size']}, {spec['size']})`: the bands below in this order, on a "
        f"{spec['size']} x {spec['size']} grid (bands of a coarser grid repeated up, nearest neighbour), each "
        "normalised as `(x - mean) / std`, `x` as the dataset stores it (S2 uint16, S1 float32), with the train "
        "statistics of the configuration (`stats.json`):\n\n| band | mean | std |\n|---|---:|---:|\n"
        f"{rows}\n## Outputs\n\n{len(spec['classes'])} logits (`{spec['labels']}`), in this class order; a class "
        f"is predicted where `sigmoid(logit) >= {spec['threshold']}`, the threshold of the test metrics:\n\n"
        f"{classes}\n## Loading\n\n```python\nimport torch\nfrom harness.models import build_model  # a checkout "
        f"of ben-hub\n\nmodel = build_model({run['model']!r}, {n}, {len(spec['classes'])}).model\n"
        'model.load_state_dict(torch.load("best.pt", map_location="cpu", weights_only=True))\nmodel.eval()\n```\n'
    )


def publish_to_repo(out: Path, repo: Path) -> None:
    """Copy the table and the loss plot into a dataset repository and re-render its card."""
    import shutil

    from .card import card_repo_id, write_card

    shutil.copyfile(out / "leaderboard.json", repo / "leaderboard.json")
    for picture in PICTURES:  # one the runs no longer give is taken out: the card shows what the table says
        if (out / picture).exists():
            shutil.copyfile(out / picture, repo / picture)
        else:
            (repo / picture).unlink(missing_ok=True)
    write_card(repo, card_repo_id((repo / "README.md").read_text(encoding="utf-8")))


def push_models(runs_dir: Path, owner: str, dataset_id: str, dry_run: bool, endpoint: str | None = None) -> list[str]:
    """One model repository per run (weights, config, run JSON, card with ``model-index``); returns the ids.

    Raises:
        RunError: as :func:`run_files` and :func:`read_run`; when a run lacks one of :data:`PUSHED` (every run is
            checked before anything is pushed, and with ``dry_run`` too).
    """
    paths = run_files(runs_dir)
    runs = [read_run(path) for path in paths]
    run_dirs = [path.parent for path in paths]
    lacking = [str(d / name) for d in run_dirs for name in PUSHED if not (d / name).is_file()]
    if lacking:
        raise RunError(
            f"{len(lacking)} file(s) of the runs to publish are missing: {', '.join(lacking[:5])}"
            f"{' ...' if len(lacking) > 5 else ''}; {RERUN}, or move that run out of {runs_dir}"
        )
    from .hub import PushConfig, check_repo_id, with_retries

    ids = [f"{owner}/{run_dir.name}" for run_dir in run_dirs]
    for repo_id in ids:
        check_repo_id(repo_id)
    if dry_run:
        return ids
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint)
    for run_dir, run, repo_id in zip(run_dirs, runs, ids, strict=True):
        card = model_card(run, dataset_id)
        operations = [CommitOperationAdd(name, str(run_dir / name)) for name in PUSHED]
        operations.append(CommitOperationAdd("README.md", card.encode()))
        retried = PushConfig(repo_id, endpoint=endpoint)
        with_retries(partial(api.create_repo, repo_id, exist_ok=True), retried, f"creating {repo_id}")
        commit = partial(api.create_commit, repo_id, operations, commit_message="Upload ben-hub benchmark run")
        with_retries(commit, retried, f"committing to {repo_id}")
    return ids


def write_outputs(runs_dir: Path, out: Path) -> list[dict[str, Any]]:
    """``leaderboard.md``, ``.csv``, ``.json`` and ``losses.png`` from the runs under ``runs_dir``; and, from the
    runs that recorded their classes, :data:`CLASS_FILES` (else any left by an earlier call are removed)."""
    runs = collect(runs_dir)
    rows = table(runs)
    classes = class_rows(runs)
    with reported_full_disk(out):
        out.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out / "leaderboard.md", markdown(rows))
        write_text_atomic(out / "leaderboard.csv", to_csv(rows))
        write_json_atomic(out / "leaderboard.json", rows)
        if runs:
            plot_losses(runs, out / "losses.png")
        if not classes:
            for name in CLASS_FILES:
                (out / name).unlink(missing_ok=True)
            return rows
        write_text_atomic(out / "per_class.md", class_markdown(classes))
        write_text_atomic(out / "per_class.csv", class_csv(classes))
        write_json_atomic(out / "per_class.json", classes)
        plot_per_class(classes, out / "per_class_f1.png")
    return rows
