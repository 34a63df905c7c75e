"""``push``: each file's sha256 taken from the plan's hashing, against ``huggingface_hub`` hashing it once more.

    python bench/push.py [--patches 3000] [--repeats 5]

A synthetic v1 repository (``bench/common.py: synthetic_repo``) is pushed whole, again and again, to the tests'
local stand-in for the Hub (``tests/hub_server.py``: the Hub's HTTP requests and its legacy LFS upload protocol,
on this machine), the stand-in emptied before each push.  Two ways, alternated, medians of ``--repeats``:
  - now: ``ben_hub.hub.upload_operation`` hands each upload the sha256 that ``push`` computed for its plan (which
    compares every file with the Hub's listing, so it hashes every byte anyway);
  - before: plain ``CommitOperationAdd(path, file)``, whose sha256 ``huggingface_hub`` computes by reading the
    whole file once more before the LFS upload.
Beside the seconds, the bytes ``huggingface_hub`` read to hash.  Over a real connection the upload sets the time;
what this measures is the local work a push does besides sending (on the Hub's Xet protocol, ``hf_xet`` would
hash while it chunks instead of in a separate pass, so there the saving is the hashing, not a read).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    import itertools
    import os
    from typing import BinaryIO

    import huggingface_hub.constants
    import huggingface_hub.lfs
    from common import alternated_medians, arguments, publish, scratch, synthetic_repo, with_values
    from huggingface_hub import CommitOperationAdd

    import ben_hub.hub
    from ben_hub.hub import LocalFile, PushConfig, push
    from tests.hub_server import FakeHub

    args = arguments(__doc__, repeats=5)
    os.environ.setdefault("HF_TOKEN", "hf_bench_token")
    huggingface_hub.constants.HF_HUB_DISABLE_XET = True  # the stand-in speaks the legacy LFS protocol
    hashed: dict[str, list[int]] = {"now": [], "before": []}
    own_hash = huggingface_hub.lfs.sha_fileobj

    def counting(fileobj: BinaryIO, chunk_size: int | None = None) -> bytes:
        counted[0] += os.fstat(fileobj.fileno()).st_size
        return own_hash(fileobj) if chunk_size is None else own_hash(fileobj, chunk_size)

    def plain(root: Path, file: LocalFile) -> CommitOperationAdd:
        return CommitOperationAdd(file.path, str(root / file.path))

    counted = [0]
    huggingface_hub.lfs.sha_fileobj = counting
    names = (f"bench/push-{n}" for n in itertools.count())
    with scratch("push", args.work) as work, FakeHub() as hub:
        _, repo = synthetic_repo(work, args.patches)

        def pushed(way: str) -> None:
            counted[0] = 0
            report = push(repo, PushConfig(next(names), endpoint=hub.url, backoff_s=0), progress=False)
            assert report["upload"] and set(hub.lfs_puts.values()) == {1}, "every LFS file sent once"
            hashed[way].append(counted[0])

        def emptied() -> None:
            for store in (hub.repos, hub.lfs, hub.lfs_puts, hub.snapshots, hub.heads):
                store.clear()

        median = alternated_medians(
            {"now": lambda: pushed("now"),
             "before": with_values(ben_hub.hub, {"upload_operation": plain}, lambda: pushed("before"))},
            args.repeats, emptied)  # fmt: skip
        size = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts)
    labels = {"now": "sha256 from the plan (`upload_operation`)", "before": "hashed again by huggingface_hub"}
    rows = [[labels[way], f"{median[way]:.2f}", f"{max(hashed[way]) / 1e6:,.1f}"] for way in median]
    publish(
        f"push: {args.patches:,} synthetic patches, {size / 1e6:,.0f} MB, whole, medians of {args.repeats}",
        f"python bench/push.py --patches {args.patches} --repeats {args.repeats}",
        "; the Hub is the tests' local stand-in (`tests/hub_server.py`, legacy LFS uploads) on this machine, so "
        "the seconds leave out the network: they are the push's own work (listing, hashing for the plan, the card, "
        "sending to a local server)",
        ["way", "seconds", "MB huggingface_hub read to hash"],
        rows,
    )


if __name__ == "__main__":
    main()
