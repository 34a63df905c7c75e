"""``verify OWNER/NAME``: a published repository checked on the Hub, against downloading it to check it.

    python bench/remote_verify.py [--patches 3000] [--repeats 3]

A synthetic v1 repository (``bench/common.py: synthetic_repo``) is pushed to the tests' local stand-in for the Hub
(``tests/hub_server.py``: the same HTTP requests as the Hub, on this machine, LFS files served from a second
origin), then checked both ways, alternated, medians of ``--repeats``:
  - where it is (``ben_hub.remote.verify_remote``): the listing, the small files, one range request per shard for
    its footer and the range requests for its patch id, label, flag, country and centre (lon, lat) columns
    (``ben_hub/ranges.py``);
  - the way before, still ``verify --download``: ``snapshot_download`` into an empty Hub cache, then every check of
    ``ben_hub.verify.verify`` (one process).
Beside the seconds, the bytes the stand-in sent for each way, which do not depend on the network: over a real
connection they set the time, with the requests (the stand-in's GETs at both origins), whose round trips a real
connection adds.  Both must pass; the band statistics recounted by the second way are what the first leaves out.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
REPO_ID = "bench/balanced-bigearthnet"


def main() -> None:
    import os
    import shutil

    import huggingface_hub.constants
    from common import alternated_medians, arguments, publish, scratch, synthetic_repo

    from ben_hub.hub import PushConfig, push, resolve_repo
    from ben_hub.remote import HubRepo, verify_remote
    from ben_hub.verify import verify
    from tests.hub_server import FakeHub

    args = arguments(__doc__)
    os.environ.setdefault("HF_TOKEN", "hf_bench_token")
    huggingface_hub.constants.HF_HUB_DISABLE_XET = True
    with scratch("remote-verify", args.work) as work, FakeHub() as hub:
        _, repo = synthetic_repo(work, args.patches)
        push(repo, PushConfig(REPO_ID, endpoint=hub.url, backoff_s=0), progress=False)
        cache = work / "hub-cache"
        sent: dict[str, list[int]] = {"on the Hub": [], "downloaded, then every check": []}
        gets: dict[str, list[int]] = {"on the Hub": [], "downloaded, then every check": []}

        def requests() -> int:
            return len(hub.gets) + len(hub.storage_gets)

        def on_the_hub() -> None:
            start, asked = hub.sent, requests()
            verify_remote(HubRepo(REPO_ID, endpoint=hub.url), progress=False)
            sent["on the Hub"].append(hub.sent - start)
            gets["on the Hub"].append(requests() - asked)

        def downloaded() -> None:
            shutil.rmtree(cache, ignore_errors=True)
            huggingface_hub.constants.HF_HUB_CACHE = str(cache)
            start, asked = hub.sent, requests()
            root, repo_id = resolve_repo(REPO_ID, endpoint=hub.url, progress=False)
            verify(root, repo_id, workers=1)
            sent["downloaded, then every check"].append(hub.sent - start)
            gets["downloaded, then every check"].append(requests() - asked)

        median = alternated_medians({"on the Hub": on_the_hub, "downloaded, then every check": downloaded},
                                    args.repeats, lambda: None)  # fmt: skip
        shards = sum(1 for _ in (repo / "data").rglob("*.parquet"))
        size = sum(p.stat().st_size for p in repo.rglob("*") if p.is_file() and ".ben-hub" not in p.parts)
    rows = [[way, f"{median[way]:.2f}", f"{max(sent[way]) / 1e6:,.2f}", f"{max(gets[way]):,}"] for way in median]
    publish(
        f"verify of a published repository: {args.patches:,} synthetic patches, {shards} shards, "
        f"{size / 1e6:,.0f} MB, medians of {args.repeats}",
        f"python bench/remote_verify.py --patches {args.patches} --repeats {args.repeats}",
        "; the Hub is the tests' local stand-in (`tests/hub_server.py`) on this machine, so the seconds leave out the "
        "network: the MB sent are what a real connection would carry",
        ["way", "seconds", "MB sent", "file GETs"],
        rows,
    )


if __name__ == "__main__":
    main()
