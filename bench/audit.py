"""``verify --archive``: comparing a built repository with its archive, against the obvious way to check it.

    python bench/audit.py [--patches 3000] [--repeats 3]

A synthetic v1 archive (S2 + S1 twins, seed 0), built once (``fast`` split); its two parts also packed as their
downloads.  Every way compares all patches, all 14 bands, and is run in turn in each repeat, its inputs read into
the page cache first; medians of ``--repeats``:
  - ben-hub (:func:`ben_hub.audit.audit`) against the folders, 1 and 2 processes, and against both tarballs
    (one stream each, one process), with a v1 S2 tarball's labels read in the same pass and, the way before
    (``ben_hub.audit.STREAM_LABELS = False``), in a pass of their own first;
  - the same tarballs, and both packed again with their patch folders in a shuffled order (as a packer's order
    may be: GNU tar without ``--sort`` takes the file system's), as ben-hub compares them (each stored row read as
    its patch arrives, until the first 64 patches turn out scattered over the row groups: then through the
    stored rows' digests, read shard by shard), with digests from the first patch, and, the way before
    (``ben_hub.audit.DIGESTS = False``), every stored row read as its patch arrives;
  - the baseline a user would write: each configuration's splits through ``datasets`` (``with_format("numpy")``),
    row by row, each band compared with ``tifffile.imread`` of its file (pixels only: no labels, georeferencing
    or twins).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
S2_FOLDER, S1_FOLDER = "BigEarthNet-v1.0", "BigEarthNet-S1-v1.0"


def baseline(repo: Path, archive: Path, patches: int) -> None:
    """Every stored row through ``datasets`` (its Arrow cache beside the repository, made in the first run, reused
    in the others), each band against ``tifffile``."""
    import json

    import datasets
    import numpy as np
    import tifffile

    twins = {}  # S1 folder by S2 patch, from the S1 JSONs
    for doc in (archive / S1_FOLDER).glob("*/*_labels_metadata.json"):
        twins[json.loads(doc.read_text())["corresponding_s2_patch"]] = doc.parent.name
    count = 0
    for config in ("original", "excluded"):  # every patch is in exactly one of their splits
        for split in datasets.load_dataset(str(repo), config, cache_dir=str(repo.parent / "hf-cache")).values():
            for row in split.with_format("numpy"):
                patch = str(row["patch_id"])
                for band, values in row.items():
                    if not (isinstance(values, np.ndarray) and values.ndim == 2):
                        continue
                    folder, name = (S1_FOLDER, twins[patch]) if band in ("VV", "VH") else (S2_FOLDER, patch)
                    expected = tifffile.imread(archive / folder / name / f"{name}_{band}.tif")
                    if not np.array_equal(values.astype(expected.dtype), expected):
                        raise AssertionError(f"{patch} {band} differs")
                count += 1
    assert count == patches


def ways_for(s2_tar: Path, shuffled: Path, archive: Path, repo: Path, patches: int) -> dict[str, Callable[[], object]]:
    """Each way to time, by its row label; each checks that it compared every patch."""
    from common import with_values

    from ben_hub import audit as audit_module
    from ben_hub.archive import locate_archive
    from ben_hub.audit import audit

    def ours(
        source: Path, workers: int, stream_labels: bool = True, digests: bool | None = True
    ) -> Callable[[], object]:
        """``digests``: as ben-hub switches to them (``True``), never (``False``) or from the first patch (``None``)."""

        def run() -> None:
            report = audit(repo, locate_archive(source), workers=workers)
            assert report.ok and report.compared == patches, report.differences

        values: dict[str, object] = {"STREAM_LABELS": stream_labels, "DIGESTS": digests is not False}
        first_patch = {"PROBE": 1, "SCATTERED": -1.0} if digests is None else {}
        return with_values(audit_module, values | first_patch, run)

    return {
        "ben-hub, folders, 1 process": ours(archive, 1),
        "ben-hub, folders, 2 processes": ours(archive, 2),
        "ben-hub, both tarballs (one stream each), 1 process": ours(s2_tar, 1),
        "ben-hub, both tarballs, labels in a pass of their own first (the way before)": ours(s2_tar, 1, False),
        "ben-hub, both tarballs, stored rows read as patches arrive (the way before)": ours(s2_tar, 1, True, False),
        "ben-hub, both tarballs, digests from the first patch (no probe)": ours(s2_tar, 1, True, None),
        "ben-hub, both tarballs packed in shuffled order, 1 process": ours(shuffled, 1),
        "ben-hub, both tarballs packed in shuffled order, 2 processes": ours(shuffled, 2),
        "ben-hub, both tarballs packed in shuffled order, stored rows read as patches arrive (the way before)": ours(
            shuffled, 1, True, False
        ),
        "datasets rows + tifffile per band (baseline; pixels only)": lambda: baseline(repo, archive, patches),
    }


def main() -> None:
    from common import (
        RATE_HEADER,
        V1_DOWNLOADS,
        alternated_medians,
        arguments,
        pack_v1_downloads,
        pack_v1_part,
        publish,
        rate_rows,
        scratch,
        warm_cache,
    )

    args = arguments(__doc__)

    from ben_hub.archive import locate_archive
    from ben_hub.archive.synth import synth_archive
    from ben_hub.build import BuildConfig, build

    with scratch("ben-hub-audit-", args.work) as work:
        archive, repo = work / f"archive-{args.patches}", work / f"repo-{args.patches}"
        if not archive.exists():
            synth_archive(archive, args.patches, "v1", seed=0, with_s1=True)
        if not (repo / "README.md").exists():
            config = BuildConfig(spec=locate_archive(archive), lists_dir=archive / "splits", method="fast")
            build(config, repo, progress=False)
        s2_tar, s1_tar = pack_v1_downloads(work, archive)
        shuffled = [pack_v1_part(work / "shuffled", archive, part, seed) for seed, part in enumerate(V1_DOWNLOADS)]
        ways = ways_for(s2_tar, shuffled[0], archive, repo, args.patches)
        median = alternated_medians(ways, args.repeats, lambda: warm_cache(archive, repo, s2_tar, s1_tar, *shuffled))
        base = median["datasets rows + tifffile per band (baseline; pixels only)"]
        rows = [[*row, f"{base / median[row[0]]:.1f}x"] for row in rate_rows(median, args.patches)]
    publish(
        f"audit: verify --archive, every patch, medians of {args.repeats}",
        f"python bench/audit.py --patches {args.patches} --repeats {args.repeats}",
        f"; {args.patches:,} synthetic v1 patches with S1 twins, 14 bands each; inputs read into the page cache "
        "before each run; ben-hub also compares labels, georeferencing and twins",
        [*RATE_HEADER, "vs baseline"],
        rows,
    )


if __name__ == "__main__":
    main()
