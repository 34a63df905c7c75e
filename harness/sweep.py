"""The paper's protocol: ShortCNN x 10 seeds and InceptionV3 x 1 seed, on both configurations, then Table 1.

    python harness/sweep.py --repo balanced-bigearthnet --out runs              # all 22 runs, then the leaderboard
    python harness/sweep.py --repo ... --dry-run                               # print the commands only
    python harness/sweep.py --repo ... -- --epochs 5 --max-batches 10          # arguments after -- go to train.py
    python harness/sweep.py --repo ... --inception-weights /weights/inception_v3.safetensors   # no Hub access
    python harness/sweep.py --repo ... --devices 0 1 2 3 4 5 6 7               # 8 runs at a time, one a GPU
    python harness/sweep.py --repo ... -- --device-cache --compile reduce-overhead   # fastest on a GPU
    python harness/sweep.py --repo ... --shortcnn-options="--pad-stem 8" -- ...   # one model's own options

Finished runs (``run.json`` present) are skipped and unfinished ones resume from their checkpoint, so the
sweep can be stopped and started again.  Each run is ``accelerate launch harness/train.py`` (this Python's
``-m accelerate.commands.launch``; set up ``accelerate config`` for mixed precision).

Without ``--devices`` the runs go one after another, and each model and configuration is one launch whose
seeds run in turn on data loaded once (``train.py --seed 0 1 ...``): the later seeds skip the start-up, the
imports and the loading.  With ``--devices``, each device runs one single-process run at a time
(``CUDA_VISIBLE_DEVICES``, ``--num_processes 1``), the longest first (InceptionV3 before ShortCNN: a step
costs 42x the FLOPs, ``bench/flops.py``), each run's output going to ``<out>/<run>/sweep.log``.  The paper's 22 runs are
independent, so with eight GPUs the sweep takes as long as its longest run (one InceptionV3 run: about 2.4 h of
epochs on an H100 with ``-- --device-cache --compile reduce-overhead``, the rates in BENCHMARKS.md) instead of
the 7.8 h of the whole protocol on one GPU (7.6 h of epochs), and no GPU time goes to gradient all-reduces as
in data parallelism.  A failed run does not stop the others; the sweep names it (and its log) at the end and
exits 1.
"""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import subprocess
import sys
import threading
from pathlib import Path

PROTOCOL = {"shortcnn": 10, "inception_v3": 1}
COST = {"inception_v3": 42.0, "shortcnn": 1.0}
"""Relative GFLOPs of a training step per image (``bench/flops.py``: 34.2 and 0.81): the longest runs go first."""


def commands(
    repo: str,
    out: str,
    seeds: dict[str, int],
    configs: list[str],
    extra: list[str],
    weights: dict[str, str] | None = None,
    launch: tuple[str, ...] = (),
    group: bool = False,
    options: dict[str, list[str]] | None = None,
) -> list[list[str]]:
    """The ``accelerate launch`` commands of the unfinished runs; ``weights``: ``--weights`` per model;
    ``launch``: options of ``accelerate launch`` itself; ``group``: one launch per model and configuration for
    all its unfinished seeds (``train.py --seed A B ...``: one after another, the data loaded once), else one
    launch per run; ``options``: ``train.py`` options per model, after ``extra`` (a later option wins)."""
    train = str(Path(__file__).resolve().parent / "train.py")
    runs = []
    for model, n_seeds in seeds.items():
        chosen = (weights or {}).get(model)
        for config in configs:
            todo = [
                str(s) for s in range(n_seeds) if not (Path(out) / f"{model}-{config}-seed{s}" / "run.json").exists()
            ]
            for batch in [todo] if group and todo else [[seed] for seed in todo]:
                runs.append([sys.executable, "-m", "accelerate.commands.launch", *launch, train, "--repo", repo,
                             "--out", out, "--model", model, "--config", config, "--seed", *batch,
                             *(["--weights", chosen] if chosen else []), *extra,
                             *(options or {}).get(model, [])])  # fmt: skip
    return runs


def seed_count(text: str) -> int:
    """An argparse ``type``: a number of seeds, 0 or more."""
    count = int(text)
    if count < 0:
        raise argparse.ArgumentTypeError(f"{text}: give 0 or more seeds")
    return count


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True, help="built repository folder or Hub dataset id")
    parser.add_argument("--out", default="runs", help="runs and the leaderboard go here (default: runs)")
    parser.add_argument("--shortcnn-seeds", type=seed_count, default=PROTOCOL["shortcnn"], metavar="N",
                        help=f"seeds 0..N-1 (default: {PROTOCOL['shortcnn']}, the paper; 0: none)")  # fmt: skip
    parser.add_argument("--inception-seeds", type=seed_count, default=PROTOCOL["inception_v3"], metavar="N",
                        help=f"seeds 0..N-1 (default: {PROTOCOL['inception_v3']}, the paper; 0: none)")  # fmt: skip
    parser.add_argument("--configs", nargs="+", default=["original", "resampled"], choices=["original", "resampled"],
                        help="default: both")  # fmt: skip
    parser.add_argument("--inception-weights", default="tv_in1k",
                        help="the paper's InceptionV3 was ImageNet-pretrained: a local file or a timm tag "
                             "(from the Hub; random init with a warning when unreachable); 'none': random")  # fmt: skip
    parser.add_argument("--devices", nargs="+", default=None, metavar="ID",
                        help="GPU ids: one run at a time on each, runs spread over them (default: one run at a "
                             "time, in this environment)")  # fmt: skip
    for model, flag in (("shortcnn", "--shortcnn-options"), ("inception_v3", "--inception-options")):
        parser.add_argument(flag, dest=f"{model}_options", type=shlex.split, default=[], metavar="'OPTIONS'",
                            help=f"train.py options for {model} alone, after those after -- (quoted, written "
                                 f"{flag}='--pad-stem 8')")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(own)
    seeds = {"shortcnn": args.shortcnn_seeds, "inception_v3": args.inception_seeds}
    weights = {"inception_v3": args.inception_weights} if args.inception_weights != "none" else {}
    launch = ("--num_processes", "1") if args.devices else ()
    chosen = {m: n for m, n in seeds.items() if n > 0}
    options = {model: getattr(args, f"{model}_options") for model in PROTOCOL}
    plan = commands(args.repo, args.out, chosen, args.configs, extra, weights, launch, not args.devices, options)
    if args.devices:
        plan.sort(key=lambda command: -COST.get(option(command, "--model"), 1.0))  # stable: seeds stay in order
    for command in plan:
        print(" ".join(command), flush=True)
    if args.dry_run:
        return 0
    failed = run_all(plan, args.devices, Path(args.out)) if args.devices else run_in_turn(plan)
    # its error (no finished run at all, an unreadable result) is printed by the CLI; the failed runs still are
    board = subprocess.run([sys.executable, "-m", "ben_hub.cli", "leaderboard", args.out]).returncode
    for command, where in failed:
        names = [n for n in run_names(command) if not (Path(args.out) / n / "run.json").exists()]
        for name in names or run_names(command):
            print(f"failed: {name} (exit {where}); fix it and run the sweep again: finished runs are skipped",
                  file=sys.stderr)  # fmt: skip
    return 1 if failed or board else 0


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def run_names(command: list[str]) -> list[str]:
    """``<model>-<config>-seed<seed>`` of each seed the command runs: the runs' folders, as train.py names them."""
    at = command.index("--seed") + 1
    seeds = command[at : next((i for i in range(at, len(command)) if command[i].startswith("--")), len(command))]
    return [f"{option(command, '--model')}-{option(command, '--config')}-seed{seed}" for seed in seeds]


def run_name(command: list[str]) -> str:
    """The folder of a one-run command (``--devices``: one run a launch)."""
    return run_names(command)[0]


def run_in_turn(plan: list[list[str]]) -> list[tuple[list[str], str]]:
    """Each run in this process's environment, one after another, output to the terminal; the failed ones."""
    failed = []
    for command in plan:
        code = subprocess.run(command).returncode
        if code:
            failed.append((command, str(code)))
    return failed


def run_all(plan: list[list[str]], devices: list[str], out: Path) -> list[tuple[list[str], str]]:
    """The runs spread over ``devices``, one at a time on each (``CUDA_VISIBLE_DEVICES``), output to each run's
    ``sweep.log``; the failed ones, with their exit code and log."""
    todo: queue.Queue[list[str]] = queue.Queue()
    for command in plan:
        todo.put(command)
    failed: list[tuple[list[str], str]] = []
    lock = threading.Lock()

    def slot(device: str) -> None:
        while True:
            try:
                command = todo.get_nowait()
            except queue.Empty:
                return
            log = out / run_name(command) / "sweep.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"[device {device}] start {run_name(command)} (log: {log})", flush=True)
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": device}
            with log.open("a") as handle:
                code = subprocess.run(command, env=env, stdout=handle, stderr=subprocess.STDOUT).returncode
            print(f"[device {device}] {'done' if code == 0 else f'FAILED (exit {code})'} {run_name(command)}",
                  flush=True)  # fmt: skip
            if code:
                with lock:
                    failed.append((command, f"{code}, log {log}"))

    threads = [threading.Thread(target=slot, args=(device,)) for device in devices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
