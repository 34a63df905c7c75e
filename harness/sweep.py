"""The paper's protocol: ShortCNN x 10 seeds and InceptionV3 x 1 seed, on both configurations, then Table 1.

    python harness/sweep.py --repo balanced-bigearthnet --out runs              # all 22 runs, then the leaderboard
    python harness/sweep.py --repo ... --dry-run                               # print the commands only
    python harness/sweep.py --repo ... -- --epochs 5 --max-batches 10          # arguments after -- go to train.py
    python harness/sweep.py --repo ... --inception-weights /weights/inception_v3.safetensors   # no Hub access

Finished runs (``run.json`` present) are skipped and unfinished ones resume from their checkpoint, so the
sweep can be stopped and started again.  Each run is ``accelerate launch harness/train.py`` (set up
``accelerate config`` for GPUs and mixed precision).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

PROTOCOL = {"shortcnn": 10, "inception_v3": 1}


def commands(
    repo: str,
    out: str,
    seeds: dict[str, int],
    configs: list[str],
    extra: list[str],
    weights: dict[str, str] | None = None,
) -> list[list[str]]:
    """The ``accelerate launch`` command of every unfinished run; ``weights``: ``--weights`` per model."""
    train = str(Path(__file__).resolve().parent / "train.py")
    runs = []
    for model, n_seeds in seeds.items():
        chosen = (weights or {}).get(model)
        for config in configs:
            for seed in range(n_seeds):
                if (Path(out) / f"{model}-{config}-seed{seed}" / "run.json").exists():
                    continue
                runs.append(["accelerate", "launch", train, "--repo", repo, "--out", out, "--model", model,
                             "--config", config, "--seed", str(seed), *(["--weights", chosen] if chosen else []),
                             *extra])  # fmt: skip
    return runs


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--out", default="runs")
    parser.add_argument("--shortcnn-seeds", type=int, default=PROTOCOL["shortcnn"])
    parser.add_argument("--inception-seeds", type=int, default=PROTOCOL["inception_v3"])
    parser.add_argument("--configs", nargs="+", default=["original", "resampled"])
    parser.add_argument("--inception-weights", default="tv_in1k",
                        help="the paper's InceptionV3 was ImageNet-pretrained: a local file or a timm tag "
                             "(from the Hub; random init with a warning when unreachable); 'none': random")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(own)
    seeds = {"shortcnn": args.shortcnn_seeds, "inception_v3": args.inception_seeds}
    weights = {"inception_v3": args.inception_weights} if args.inception_weights != "none" else {}
    plan = commands(args.repo, args.out, {m: n for m, n in seeds.items() if n > 0}, args.configs, extra, weights)
    for command in plan:
        print(" ".join(command), flush=True)
        if not args.dry_run:
            subprocess.run(command, check=True)
    if not args.dry_run:
        subprocess.run([sys.executable, "-m", "ben_hub.cli", "leaderboard", args.out], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
