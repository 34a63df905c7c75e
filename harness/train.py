"""Train and evaluate one model on one configuration of a built repository (the paper's protocol).

    accelerate launch harness/train.py --repo balanced-bigearthnet --config resampled --model shortcnn --seed 0
    accelerate launch --cpu harness/train.py ...          # no GPU

SGD on BCE-with-logits, the paper's learning rate and batch size per model unless given, seed set before the
model is built; mixed precision and several processes through accelerate (process i of k decodes, or with
``--device-cache`` holds, only row groups i, i + k, ... of each split and batches their rows; from the
``--cache-dir`` memory map it takes every k-th batch; in training all take the number of steps of the
smallest part; losses are summed over processes, test predictions gathered, padded to equal length and
trimmed).
Every epoch saves a checkpoint (model, optimiser, RNG states, history), so a killed run relaunched with the
same command continues and ends with the same result.  The epoch with the lowest validation loss is
evaluated on test with the ``multilabel_prf`` metric module (macro/micro P, R, F1, F2 at threshold 0.5).
The run writes ``run.json``: config, versions, device, weights origin, per-epoch losses, test metrics,
images/s, and the seconds of each launch from its process's start (imports, loading, compilation, epochs,
checkpoints, test) with the device-hours they add up to.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `accelerate launch harness/train.py` from the root

from accelerate import Accelerator
from accelerate.utils import set_seed

from ben_hub.bands import BANDS
from ben_hub.loader import DeviceBatches, DeviceCache, LoaderConfig, SplitReader, input_spec
from ben_hub.repo import SHARED_TEST, SHARED_VALIDATION, load_json
from ben_hub.splits import SPLITS
from harness.config import COMPILE_MODES, KNOBS, MODEL_DEFAULTS, KernelChoices, TrainConfig
from harness.models import build_model, count_parameters

METRIC_PATH = Path(__file__).resolve().parent / "metrics" / "multilabel_prf"


def bounded(kind: type[int] | type[float], low: float, strict: bool) -> Any:
    """An argparse ``type``: ``kind`` of the text, above ``low`` (``strict``) or from it."""

    def parse(text: str) -> int | float:
        value = kind(text)  # a ValueError: argparse says "invalid <name> value"
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"{text}: give a number {'above' if strict else 'of at least'} {low:g}")
        return value

    parse.__name__ = kind.__name__
    return parse


def above_zero(kind: type[int] | type[float]) -> Any:
    return bounded(kind, 0, strict=True)


def from_zero(kind: type[int] | type[float]) -> Any:
    return bounded(kind, 0, strict=False)


PAPER_LR = ", ".join(f"{m} {d['lr']:g}" for m, d in MODEL_DEFAULTS.items())
PAPER_BATCH = ", ".join(f"{m} {d['batch_size']:g}" for m, d in MODEL_DEFAULTS.items())


def parse_args(argv: list[str] | None = None) -> list[TrainConfig]:
    """One configuration per ``--seed`` (several seeds: runs one after another on the same loaded data)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="built repository folder or Hub dataset id")
    parser.add_argument("--revision", default=None, help="Hub dataset revision: branch, tag or commit")
    parser.add_argument("--config", default="resampled", choices=["original", "resampled"],
                        help="the split to train on (default: resampled)")  # fmt: skip
    parser.add_argument("--model", default="shortcnn", choices=list(MODEL_DEFAULTS), help="default: shortcnn")
    parser.add_argument("--bands", nargs="+", default=["B04", "B03", "B02"], choices=list(BANDS), metavar="BAND",
                        help=f"input bands, in this order (any of {', '.join(BANDS)})")  # fmt: skip
    parser.add_argument("--labels", default="labels", choices=["labels", "labels_19"],
                        help="43 CORINE classes (labels, the default) or the 19-class nomenclature")  # fmt: skip
    parser.add_argument("--epochs", type=above_zero(int), default=100, help="default: 100 (the paper)")
    parser.add_argument("--lr", type=above_zero(float), default=None, help=f"SGD learning rate (default: {PAPER_LR})")
    parser.add_argument("--batch-size", type=above_zero(int), default=None,
                        help=f"training batch (default: {PAPER_BATCH})")  # fmt: skip
    parser.add_argument("--momentum", type=from_zero(float), default=0.0, help="SGD momentum (default: 0, plain SGD)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0],
                        help="one seed, or several: runs one after another, the data loaded once")  # fmt: skip
    parser.add_argument("--weights", default=None, help="ImageNet weights: a local file or a timm tag (Hub)")
    parser.add_argument("--device-cache", action="store_true", help="keep the splits on the accelerator")
    parser.add_argument("--cache-dir", default=None, help="decode the splits once into memory maps here")
    parser.add_argument(
        "--loader-threads", type=above_zero(int), default=None, help="decoding threads (default: cores/processes)"
    )
    parser.add_argument(
        "--max-batches", type=above_zero(int), default=None, help="train batches per epoch (quick checks)"
    )
    parser.add_argument(
        "--eval-batch-size", type=above_zero(int), default=None, help="validation and test batch (any size)"
    )
    parser.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES,
                        help="torch.compile the model, optionally naming the mode (GPU: faster steps; "
                             "reduce-overhead, with CUDA graphs, is the fastest measured)")  # fmt: skip
    for name, knob in KNOBS.items():  # dest: the KernelChoices field
        parser.add_argument(f"--{name}", dest=knob.field, help=knob.help,
                            **({"type": above_zero(int), "default": None, "metavar": "N"} if knob.valued
                               else {"action": "store_true"}))  # fmt: skip
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic cuDNN kernels, not the fastest ones (bit-exact reruns)")  # fmt: skip
    parser.add_argument("--out", default="runs", help="runs go to OUT/MODEL-CONFIG-seedS/ (default: runs)")
    args = vars(parser.parse_args(argv))  # each option's dest is a TrainConfig or a KernelChoices field
    kernels = KernelChoices(**{knob.field: args.pop(knob.field) for knob in KNOBS.values()})
    if len(set(args["bands"])) < len(args["bands"]):
        parser.error(f"--bands {' '.join(args['bands'])}: name each band once")
    if kernels.pad_stem is not None and kernels.pad_stem <= len(args["bands"]):
        parser.error(f"--pad-stem {kernels.pad_stem}: the stem already has {len(args['bands'])} input bands; "
                     "give more channels than that, e.g. 8 for RGB")  # fmt: skip
    seeds = list(dict.fromkeys(args.pop("seed")))  # each once, in the order given
    return [TrainConfig(**{**args, "bands": tuple(args["bands"]), "seed": seed, "kernels": kernels})
            for seed in seeds]  # fmt: skip


def loader_threads(config: TrainConfig, accelerator: Accelerator) -> int:
    """``--loader-threads``, else this process's share of the cores (at most 8)."""
    return config.loader_threads or max(1, min(8, (os.cpu_count() or 1) // accelerator.num_processes))


def open_split(root: Path, split: str, config: TrainConfig, accelerator: Accelerator) -> Any:
    loader = LoaderConfig(
        config=config.config,
        bands=config.bands,
        labels=config.labels,
        batch_size=config.batch if split == "train" else config.eval_batch,
        cache_dir=config.cache_dir,
        raw=not config.device_cache,  # streamed raw, normalised on the accelerator
        threads=loader_threads(config, accelerator),
    )
    reader = SplitReader(root, split, loader)
    if config.cache_dir is not None:
        with accelerator.local_main_process_first():  # one process a machine decodes the split, the others map it
            reader.cached()
    part, fuse = (accelerator.process_index, accelerator.num_processes), config.kernels.batch_fuse
    if config.device_cache:  # this process's part of the split only
        return DeviceCache(reader, accelerator.device, part, fuse=fuse)
    return DeviceBatches(reader, accelerator.device, fuse=fuse)


def configure_backends(config: TrainConfig) -> dict[str, bool]:
    """cuDNN's kernel choice: benchmarked per input shape (fastest; shapes are fixed here, so each is timed
    once) or deterministic (bit-exact reruns on the same GPU).  Call before the model is built."""
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's condition for determinism
        torch.use_deterministic_algorithms(True, warn_only=True)  # warn on ops with no deterministic kernel
    torch.backends.cudnn.benchmark = not config.deterministic
    torch.backends.cudnn.deterministic = config.deterministic
    return {"benchmark": torch.backends.cudnn.benchmark, "deterministic": torch.backends.cudnn.deterministic}


def my_batches(
    source: Any, accelerator: Accelerator, epoch: int, shuffle: bool, seed: int, even: bool = False, desc: str = ""
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """This process's share of the batches (its part of the split; the other parts are not read or formed),
    normalised on the device.

    ``even``: every process takes the same number of batches (the part with the fewest sets it; the rows left
    over are different ones each shuffled epoch).  Training needs it: each backward is a collective, and a
    process with one batch more would wait for the others forever.
    """
    from tqdm.auto import tqdm

    part = (accelerator.process_index, accelerator.num_processes)
    batches = source.batches(epoch, shuffle=shuffle, seed=seed, part=part, even=even)
    steps = source.steps(epoch, shuffle=shuffle, seed=seed, part=part, even=even)
    quiet = not (accelerator.is_main_process and sys.stderr.isatty())  # a bar on a terminal, not in logs
    yield from tqdm(batches, total=steps, desc=desc, unit=" batches", leave=False, disable=quiet)


def evaluate_split(
    model: torch.nn.Module,
    source: Any,
    accelerator: Accelerator,
    threshold: float,
    predictions: bool = True,
    shared: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Mean BCE loss summed over processes, and (``predictions``) this process's thresholded predictions and
    references as int8 rows.  Everything stays on the device until the split is done: no host sync per batch,
    so the host queues the next batch while the accelerator works (validation, every epoch, needs the loss only).

    ``shared``: this process's rows of the split (in batch order) that lie in the cell the other configuration
    shares (1.0) or not (0.0), on the device (:func:`cell_rows`); the mean loss over those rows is
    ``shared_loss``.  The loss over the split is summed as without it, bit for bit.
    """
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="sum")
    row_loss = torch.nn.BCEWithLogitsLoss(reduction="none")
    model.eval()
    loss = torch.zeros((), device=accelerator.device, dtype=torch.float64)
    inside = torch.zeros((), device=accelerator.device, dtype=torch.float64)
    images = 0
    preds, refs = [], []
    with torch.no_grad():
        for x, y in my_batches(source, accelerator, 0, False, 0, desc="evaluate"):
            with accelerator.autocast():
                logits = model(x).float()
            loss += loss_fn(logits, y).double()
            if shared is not None:
                piece = shared[images : images + len(y)]
                if len(piece) != len(y):  # shapes are known on the host: no sync
                    raise mask_error(len(shared), f"over {images + len(y)}")
                inside += (row_loss(logits, y).sum(1) * piece).sum().double()
            images += len(y)
            if predictions:
                preds.append((torch.sigmoid(logits) >= threshold).to(torch.int8))
                refs.append(y.to(torch.int8))
    if shared is not None and len(shared) != images:
        raise mask_error(len(shared), str(images))
    count = torch.tensor(float(images), device=accelerator.device, dtype=torch.float64)
    rows = torch.zeros((), device=accelerator.device, dtype=torch.float64) if shared is None else shared.sum().double()
    total = accelerator.reduce(torch.stack([loss, count, inside, rows]), reduction="sum").cpu()
    n_classes = source.n_classes
    out: dict[str, Any] = {"loss": float(total[0] / total[1] / n_classes) if total[1] else float("nan")}
    if shared is not None:
        out["shared_loss"] = float(total[2] / total[3] / n_classes) if total[3] else None
    if predictions:
        empty = torch.zeros((0, n_classes), dtype=torch.int8)
        out["predictions"] = torch.cat(preds).cpu() if preds else empty
        out["references"] = torch.cat(refs).cpu() if refs else empty
    return out


def mask_error(mask: int, rows: str) -> Exception:
    from ben_hub.errors import RunError

    return RunError(f"the shared-cell mask has {mask} rows, this process's part of the split {rows}")


def train_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    source: Any,
    accelerator: Accelerator,
    epoch: int,
    config: TrainConfig,
) -> tuple[float, int]:
    """One pass over this process's training batches; (mean loss over its images, images seen).

    The loss is summed on the device and read once at the end, so the host never waits for a step and
    can queue the next batches while the GPU works.
    """
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss()
    total = torch.zeros((), device=accelerator.device, dtype=torch.float32)
    count = 0
    batches = my_batches(source, accelerator, epoch, True, config.seed, even=True, desc=f"epoch {epoch}")
    for step, (x, y) in enumerate(batches):
        if config.max_batches is not None and step >= config.max_batches:
            break
        with accelerator.autocast():
            loss = loss_fn(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        total += loss.detach() * len(y)
        count += len(y)
    return float(total) / max(count, 1), count


def gather_rows(rows: torch.Tensor, accelerator: Accelerator) -> torch.Tensor:
    """Concatenate every process's rows (counts may differ by one batch): pad, gather, trim."""
    if accelerator.num_processes == 1:
        return rows
    device = accelerator.device
    counts = accelerator.gather(torch.tensor([len(rows)], device=device)).tolist()
    padded = accelerator.gather(accelerator.pad_across_processes(rows.to(device), dim=0)).cpu()
    width = max(counts)
    return torch.cat([padded[i * width : i * width + n] for i, n in enumerate(counts)])


def test_metrics(
    predictions: torch.Tensor, references: torch.Tensor, accelerator: Accelerator
) -> tuple[dict[str, float], dict[str, list[Any]], int]:
    """The metric module on every process's predictions: Table 1's eight numbers, each class's numbers
    (support, predicted positives, precision, recall, F1, F2), and how many images were scored."""
    import evaluate

    predictions, references = gather_rows(predictions, accelerator), gather_rows(references, accelerator)
    metric = evaluate.load(str(METRIC_PATH))
    scores = dict(metric.compute(predictions=predictions.tolist(), references=references.tolist(), per_class=True))
    return scores, scores.pop("per_class"), len(references)


def cell_rows(source: Any, cell: str, accelerator: Accelerator) -> Any:
    """Whether each of this process's rows of the split, in its batches' order, lies in ``cell`` (a bool array);
    ``None`` when no row of the split does (the same on every process)."""
    inside = source.in_cell(cell)
    if not inside.any():
        return None
    return inside[source.eval_rows((accelerator.process_index, accelerator.num_processes))]


def shared_test_record(test: dict[str, Any], source: Any, accelerator: Accelerator) -> dict[str, Any]:
    """``run.json``'s ``test_shared``: Table 1's eight numbers over the test patches the other configuration holds
    out for test too (the :data:`~ben_hub.repo.SHARED_TEST` cell), from the test predictions already made; models
    trained on ``original`` and on ``resampled`` are compared there on the same patches.  ``metrics`` is ``None``
    when the cell is empty (a ``--subset`` build, say)."""
    keep = cell_rows(source, SHARED_TEST, accelerator)
    if keep is None:  # on every process: none of them gathers
        return {"cell": SHARED_TEST, "patches": 0, "metrics": None}
    if len(keep) != len(test["predictions"]):
        raise mask_error(len(keep), f"{len(test['predictions'])} predicted")
    mask = torch.from_numpy(keep)
    metrics, _, scored = test_metrics(test["predictions"][mask], test["references"][mask], accelerator)
    return {"cell": SHARED_TEST, "patches": scored, "metrics": metrics}


def per_class_record(
    root: Path, config: TrainConfig, classes: list[str], scores: dict[str, list[Any]]
) -> dict[str, list[Any]]:
    """``run.json``'s ``test_per_class``: the ``classes`` in output order (:func:`inputs`), each one's positives in the
    configuration's train split (``stats.json``; what the leaderboard ranks rare against frequent by) and its test
    numbers."""
    train = load_json(root, "stats.json")["configs"][config.config]["train"]["labels"][config.labels]
    return {"classes": classes, "train_positives": list(train), **scores}


def plain_model(model: torch.nn.Module, accelerator: Accelerator) -> torch.nn.Module:
    """The model without its torch.compile and distributed wrappers: its state dict has the plain keys."""
    return accelerator.unwrap_model(getattr(model, "_orig_mod", model))


def load_history(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "checkpoint" / "history.json"
    return json.loads(path.read_text()) if path.exists() else {"epochs": [], "best_epoch": None, "best_val": None}


def setup(config: TrainConfig, processes: int, data: str | None = None) -> dict[str, Any]:
    """What a run's result depends on: a checkpoint resumes only under the same values (the epochs may grow;
    evaluation batch, threads, compilation and the repository's path may change).  ``data``: the digest of the
    repository's ``manifest.json`` (:func:`dataset_identity`), which names every shard by its sha256."""
    saved = config.to_json()
    fields = ("config", "model", "bands", "labels", "learning_rate", "batch", "momentum", "seed", "weights",
              "device_cache", "max_batches")  # fmt: skip
    return {**{k: saved[k] for k in fields}, "cached": config.cache_dir is not None, "processes": processes,
            "data": data}  # fmt: skip


def dataset_identity(root: Path, repo: str, repo_id: str | None) -> dict[str, Any]:
    """The data a run trained on: the ``--repo`` given, the Hub commit it resolved to (the snapshot folder's
    name) and the sha256 of ``manifest.json``, which lists every shard with its own sha256; and the build's
    spatial leakage (``stats.json``'s ``spatial``: per configuration and split, the share of patches beside or on
    another split's), ``None`` for a build from before it."""
    import hashlib

    digest = hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()
    spatial = load_json(root, "stats.json").get("spatial")
    return {"repo": repo, "hub_commit": root.name if repo_id else None, "manifest_sha256": digest, "spatial": spatial}


def check_resume(run_dir: Path, history: dict[str, Any], now: dict[str, Any]) -> None:
    """Raise :class:`RunError` when ``run_dir``'s checkpoint was trained under another :func:`setup`: resuming
    would mix two runs (with another process count, each process would also read other batches)."""
    from ben_hub.errors import RunError

    before = history.get("setup")
    if not history["epochs"] or before is None:
        return
    changed = [k for k in sorted(set(before) | set(now)) if before.get(k) != now.get(k)]
    if changed:
        was = ", ".join(f"{k}={before.get(k)!r}" for k in changed)
        asked = ", ".join(f"{k}={now.get(k)!r}" for k in changed)
        raise RunError(f"{run_dir}: its checkpoint ({len(history['epochs'])} epochs) was trained with {was}, this "
                       f"launch asks for {asked}; relaunch with the checkpoint's settings to resume it, or give "
                       f"another --out (or remove the folder) to start afresh")  # fmt: skip


def process_seconds() -> float:
    """Wall seconds since this process started: interpreter start, imports and all (a launch's device time)."""
    import psutil

    return time.time() - psutil.Process().create_time()


def recover_checkpoint(run_dir: Path) -> None:
    """Finish the swap of :func:`save_checkpoint` that a kill cut between its two renames: with no ``checkpoint``,
    the new one (``checkpoint.tmp``, complete once its ``history.json`` is in) takes its place, else the old one
    (``checkpoint.old``).  Without this, such a run would start again from its first epoch."""
    if (run_dir / "checkpoint").exists():
        return
    for candidate in (run_dir / "checkpoint.tmp", run_dir / "checkpoint.old"):
        if (candidate / "history.json").is_file():
            candidate.rename(run_dir / "checkpoint")
            return


def save_checkpoint(accelerator: Accelerator, run_dir: Path, history: dict[str, Any]) -> None:
    """Write the new checkpoint beside the old one, then swap: a kill leaves one complete checkpoint (and the
    history's time of this launch so far)."""
    tmp, final = run_dir / "checkpoint.tmp", run_dir / "checkpoint"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()  # save_state has no barrier: every process's files must be in before the swap
    if accelerator.is_main_process:
        (tmp / "history.json").write_text(json.dumps(history, indent=2))
        old = run_dir / "checkpoint.old"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


@dataclasses.dataclass
class Shared:
    """What runs that differ only in seed share in one process: the accelerator, the resolved repository and
    its identity, and the opened splits (decoded, cached or held on the device once)."""

    accelerator: Accelerator
    root: Path
    dataset: dict[str, Any]
    loaders: dict[str, Any] | None = None


def train_seeds(configs: list[TrainConfig]) -> list[dict[str, Any]]:
    """Runs that differ only in seed, one after another in this process; each run's ``run.json`` result.

    The repository is resolved and its splits opened once, so the later runs skip the start-up, the imports and
    the loading (filling a device cache with a configuration's 519,284 patches, say): each gives the result it
    gives alone (the seed is set before each model is built; batches depend on seed and epoch only).  A run that
    fails is reported and, with one process, the next one starts; the failures are raised together at the end.
    """
    import traceback

    from ben_hub.errors import BenHubError, RunError, WeightsError
    from ben_hub.hub import resolve_repo
    from ben_hub.repo import split_patterns

    first = configs[0]
    if any(dataclasses.replace(c, seed=first.seed) != first for c in configs):
        raise RunError("train_seeds: the runs must differ in seed only")
    accelerator = Accelerator()
    first.kernels.check_scaled(first.momentum, accelerator.scaler is not None)  # before any data is read
    patterns = split_patterns(first.config, SPLITS)  # a Hub id: only these splits, and of their shards only the
    columns = [*first.bands, first.labels]  # columns read here (a column mirror: ben_hub/mirror.py)
    with accelerator.main_process_first():  # one process downloads; the others then find it done
        root, repo_id = resolve_repo(first.repo, first.revision, patterns=patterns, columns=columns)
    shared = Shared(accelerator, root, dataset_identity(root, first.repo, repo_id))
    results, failed, began = [], [], 0.0  # began: process seconds at this run's start (the first: the process's)
    for config in configs:
        try:
            with config.kernels.active():  # for the whole run: compiled graphs trace lazily
                results.append(train_one(config, shared, began))
        except Exception as err:
            if accelerator.num_processes > 1 or len(configs) == 1 or isinstance(err, WeightsError):
                raise  # several processes cannot go on in step after one failed; every seed reads the same weights
            failed.append(f"{config.run_name}: {type(err).__name__}: {err}")
            if not isinstance(err, BenHubError):  # not a named bad input: where it broke helps
                traceback.print_exc()
            print(f"error: {failed[-1]}; going on with the next seed", file=sys.stderr, flush=True)
        accelerator.free_memory()  # this run's model and optimiser: the next run registers its own
        torch._dynamo.reset()  # its compiled graphs (and CUDA graphs)
        began = process_seconds()
    if failed:
        raise RunError(f"{len(failed)} of {len(configs)} runs failed: " + "; ".join(failed))
    return results


def train_one(config: TrainConfig, shared: Shared, began: float) -> dict[str, Any]:
    """One seed's run on the shared data; its launch seconds count from ``began`` (process seconds)."""
    accelerator = shared.accelerator
    run_dir = config.run_dir()
    if accelerator.is_main_process:
        recover_checkpoint(run_dir)
    accelerator.wait_for_everyone()
    history = load_history(run_dir)
    now = setup(config, accelerator.num_processes, shared.dataset["manifest_sha256"])
    check_resume(run_dir, history, now)  # before anything is overwritten
    history["setup"] = now
    history.setdefault("launches", []).append(0.0)  # this launch, updated at every checkpoint
    clock = lambda: process_seconds() - began  # noqa: E731
    cudnn = configure_backends(config)
    set_seed(config.seed)  # before the model is built: the same seed gives the same initial weights
    if shared.loaders is None:  # opening them draws no random numbers: every seed sees the same sequence
        shared.loaders = {s: open_split(shared.root, s, config, accelerator) for s in SPLITS}
    loaders = shared.loaders
    n_classes = loaders["train"].n_classes
    built = build_model(config.model, len(config.bands), n_classes, config.weights)
    if accelerator.is_main_process:  # the data and the weights read: a run folder is a run that started
        run_dir.mkdir(parents=True, exist_ok=True)
        config.save(run_dir / "config.json")
    config.kernels.apply(built.model)  # before compiling; parameters and state dict unchanged
    if accelerator.device.type == "cuda":  # NHWC: the layout cuDNN's fastest convolution kernels use
        built.model.to(memory_format=torch.channels_last)
    optimizer = config.kernels.optimizer(built.model.parameters(), config.learning_rate, config.momentum)
    model, optimizer = accelerator.prepare(built.model, optimizer)
    if config.compile:
        model = torch.compile(model, mode=config.compile)
    if history["epochs"]:
        accelerator.load_state(str(run_dir / "checkpoint"))
        config.kernels.restore(optimizer)  # the checkpoint's SGD implementation came with its state
    images, seconds = 0, 0.0
    in_shared = cell_rows(loaders["validation"], SHARED_VALIDATION, accelerator)  # a float mask on the device
    shared_val = None if in_shared is None else torch.from_numpy(in_shared.astype("float32")).to(accelerator.device)
    for epoch in range(len(history["epochs"]), config.epochs):
        start = time.perf_counter()
        train_loss, count = train_epoch(model, optimizer, loaders["train"], accelerator, epoch, config)
        elapsed = time.perf_counter() - start
        seconds += elapsed
        images += count
        val = evaluate_split(model, loaders["validation"], accelerator, config.threshold, False, shared_val)
        record = {"epoch": epoch, "train_loss": train_loss, "val_loss": val["loss"],
                  "shared_val_loss": val.get("shared_loss")}  # fmt: skip
        history["epochs"].append(record)
        whole = time.perf_counter() - start
        history.setdefault("seconds", []).append(whole)  # kept apart from the results: timings differ run to run
        if history["best_val"] is None or val["loss"] < history["best_val"]:
            history["best_val"], history["best_epoch"] = val["loss"], epoch
            if accelerator.is_main_process:
                torch.save(plain_model(model, accelerator).state_dict(), run_dir / "best.pt")
        history["launches"][-1] = clock()
        save_checkpoint(accelerator, run_dir, history)
        rate = count * accelerator.num_processes / elapsed if elapsed else 0.0  # about: processes' counts may differ
        accelerator.print(f"epoch {epoch}: train {record['train_loss']:.4f} val {record['val_loss']:.4f} "
                          f"({rate:,.0f} train images/s, {whole:.0f} s with validation)")  # fmt: skip
    accelerator.wait_for_everyone()
    plain_model(model, accelerator).load_state_dict(
        torch.load(run_dir / "best.pt", map_location="cpu", weights_only=True)
    )
    test = evaluate_split(model, loaders["test"], accelerator, config.threshold)
    metrics, classes, scored = test_metrics(test["predictions"], test["references"], accelerator)
    shared_scores = shared_test_record(test, loaders["test"], accelerator)
    images = int(accelerator.reduce(torch.tensor(images, device=accelerator.device), reduction="sum"))  # all processes
    result = run_record(
        config,
        accelerator,
        built.weights_origin,
        count_parameters(built.model),
        history,
        test["loss"],
        metrics,
        images / seconds if seconds else None,
    )
    threads, spec = loader_threads(config, accelerator), inputs(shared.root, config)
    history["launches"][-1] = clock()  # the test included
    result.update(test_images=scored, train_images=images, cudnn=cudnn, loader_threads=threads,
                  fused_batches=bool(getattr(loaders["train"], "fused", False)),
                  dataset=shared.dataset, inputs=spec,
                  test_per_class=per_class_record(shared.root, config, spec["classes"], classes),
                  test_shared=shared_scores,
                  epoch_seconds=history.get("seconds", []), launch_seconds=history["launches"],
                  device_hours=sum(history["launches"]) * accelerator.num_processes / 3600)  # fmt: skip
    if accelerator.is_main_process:
        (run_dir / "run.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return result


def inputs(root: Path, config: TrainConfig) -> dict[str, Any]:
    """The model's inputs and outputs (:func:`ben_hub.loader.input_spec`) with the threshold a class is predicted
    from, for ``run.json`` and the model card."""
    chosen = LoaderConfig(config=config.config, bands=config.bands, labels=config.labels)
    return {**input_spec(root, chosen), "threshold": config.threshold}


def run_record(
    config: TrainConfig,
    accelerator: Accelerator,
    weights_origin: str,
    parameters: int,
    history: dict[str, Any],
    test_loss: float,
    metrics: dict[str, float],
    images_per_s: float | None,
) -> dict[str, Any]:
    import accelerate
    import timm

    import ben_hub

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu"
    return {
        "config": config.to_json(), "model": config.model, "dataset_config": config.config, "seed": config.seed,
        "weights_origin": weights_origin, "parameters": parameters, "history": history["epochs"],
        "best_epoch": history["best_epoch"], "test_loss": test_loss, "test": metrics,
        "train_images_per_s": images_per_s, "processes": accelerator.num_processes,
        "mixed_precision": accelerator.mixed_precision, "device": device,
        "versions": {"ben_hub": ben_hub.__version__, "torch": torch.__version__, "timm": timm.__version__,
                     "accelerate": accelerate.__version__, "python": platform.python_version()},
        "host_cpus": os.cpu_count(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from ben_hub.errors import BenHubError
    from ben_hub.space import reported_full_disk

    try:
        configs = parse_args(argv)
        with reported_full_disk(Path(configs[0].out), "run the same command again: it resumes from its checkpoint"):
            summaries = train_seeds(configs)
    except BenHubError as err:  # bad input: the message names the file and the fix; no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    for summary in summaries:
        print(json.dumps({"seed": summary["seed"], "best_epoch": summary["best_epoch"], **summary["test"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
