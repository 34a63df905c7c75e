"""The ``ben-hub`` command line: parses options, calls the library, formats results.

No logic lives here; every option is declared once (module-level decorators) and reused.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .bands import BANDS
from .errors import BenHubError

F = TypeVar("F", bound=Callable[..., Any])

PATH = click.Path(path_type=Path)
EXISTING = click.Path(exists=True, path_type=Path)


def layout_option(help: str = "Archive layout; detected from the folder when omitted.") -> Callable[[F], F]:
    return click.option("--layout", type=click.Choice(["v1", "v2"]), default=None, help=help)


seed_option = click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
ratios_option = click.option(
    "--ratios",
    type=float,
    nargs=3,
    default=(0.6, 0.2, 0.2),
    show_default=True,
    help="Target train / validation / test ratios.",
)
METHODS = ["iterstrat", "fast", "random", "lists"]


def method_option(default: str) -> Callable[[F], F]:
    """``--method``: the paper's iterstrat, ben-hub's fast, random, or explicit lists."""
    return click.option(
        "--method",
        type=click.Choice(METHODS),
        default=default,
        show_default=True,
        help="Split method: the paper's iterstrat, ben-hub's fast, random, or lists.",
    )


countries_option = click.option(
    "--countries",
    type=PATH,
    default=None,
    metavar="PATH|reben",
    help="v1: reBEN metadata.parquet to fill `country` (joined on s2v1_name); `reben`: the published one, "
    "downloaded once.",
)
block_option = click.option(
    "--block",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Keep each square of N x N patches in one split, stratifying the squares (--method fast): squares laid on "
    "the UTM zone by each patch's tile (reBEN names; v1 JSONs' tile_source), so a place's dates and the ground "
    "neighbouring tiles share are one square; neighbours, which look alike, then meet across splits only at "
    "square edges.",
)
classes_option = click.option(
    "--classes",
    type=click.Choice(["43", "19"]),
    default=None,
    callback=lambda _ctx, _param, value: None if value is None else int(value),
    help="Nomenclature to stratify on and measure the split by: 43 classes (v1's, the paper's) or the 19 of "
    "BigEarthNet-19 (v1's labels grouped as labels_19; reBEN has only these). Default: 43 for v1, 19 for reBEN.",
)

resampled_lists_option = click.option(
    "--resampled-lists",
    type=EXISTING,
    default=None,
    help="With --method lists: folder with val.csv, test.csv (and train.csv, else the rest), as `ben-hub split` "
    "writes them; default: the paper's.",
)
lists_dir_option = click.option(
    "--lists-dir",
    type=EXISTING,
    default=None,
    help="Folder with official lists (original/{train,val,test}.csv, exclusion lists). "
    "Default: splits/ in ARCHIVE or beside its S2 part if present, else download the published lists.",
)


def s1_option(help: str = "Include the Sentinel-1 VV/VH bands when the archive has them.") -> Callable[[F], F]:
    return click.option("--s1/--no-s1", "with_s1", default=True, show_default=True, help=help)


metadata_option = click.option(
    "--metadata",
    type=EXISTING,
    default=None,
    help="reBEN metadata.parquet (its snow/cloud companion beside it is read too). Default: the archive "
    "folder's, else the published one, downloaded once and verified by content.",
)
s1_dir_option = click.option(
    "--s1-dir",
    type=EXISTING,
    default=None,
    help="The S1 part, when not beside the S2 part: its unpacked folder or its download (BigEarthNet-S1-v1.0.tar.gz, "
    "BigEarthNet-S1.tar.zst); a build stages the download once into OUT/.ben-hub/s1 (as large as the unpacked "
    "files) and deletes it when done.",
)
subset_option = click.option(
    "--subset",
    is_flag=True,
    help="The archive folder holds part of BigEarthNet: leave out (and count) the listed patches it lacks "
    "instead of stopping.",
)
progress_option = click.option("--quiet", is_flag=True, help="No progress bars.")
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print what would be published on the Hub; publish nothing."
)
revision_option = click.option("--revision", default=None, help="Branch, tag or commit, for a Hub id.")
endpoint_option = click.option(
    "--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)."
)
workers_option = click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="all cores",
    help="Worker processes (writing shards, from a tarball beside the one reading it; reading a large v1 folder's "
    "JSONs; statistics; checks against an archive).",
)


def handle_errors(func: F) -> F:
    """Turn library errors into Click errors (exit 1, message only, no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BenHubError as err:
            raise click.ClickException(str(err)) from None

    return wrapper  # type: ignore[return-value]


@click.group()
@click.version_option(package_name="ben-hub")
def main() -> None:
    """Turn BigEarthNet archives into balanced, documented Hugging Face datasets."""
    show_library_warnings()


class TqdmHandler(logging.Handler):
    """The library's warnings (``ben_hub`` logger) on stderr, above any progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm.auto import tqdm

        tqdm.write(f"ben-hub: {record.levelname.lower()}: {record.getMessage()}", file=sys.stderr)


def show_library_warnings() -> None:
    log = logging.getLogger("ben_hub")
    if not any(isinstance(h, TqdmHandler) for h in log.handlers):
        log.addHandler(TqdmHandler(logging.WARNING))


@main.command()
@click.argument("out", type=PATH)
@click.option("-n", "--patches", type=click.IntRange(min=1), default=500, show_default=True, help="Patches to write.")
@layout_option("Archive layout: v1 (GeoTIFF folders with JSON labels) or v2 (reBEN, metadata.parquet).  [default: v1]")
@seed_option
@s1_option("Write each patch's Sentinel-1 twin (VV, VH) too.")
@progress_option
@handle_errors
def synth(out: Path, patches: int, layout: str | None, seed: int, with_s1: bool, quiet: bool) -> None:
    """Write a synthetic BigEarthNet archive of N learnable patches to OUT."""
    from tqdm.auto import tqdm

    from .archive.synth import synth_archive

    # delay: no bar drawn for an error at once (an existing OUT)
    with tqdm(total=patches, desc="synth", unit=" patches", disable=quiet, delay=0.2) as bar:
        synth_archive(out, patches, layout or "v1", seed, with_s1, lambda: bar.update())
    click.echo(f"wrote {patches} {layout or 'v1'} patches to {out}")


@main.command()
@click.argument("archive", type=EXISTING)
@click.option("-o", "--out", type=PATH, required=True, help="Repository folder to create or resume.")
@layout_option()
@s1_option()
@method_option("iterstrat")
@ratios_option
@block_option
@classes_option
@seed_option
@lists_dir_option
@metadata_option
@s1_dir_option
@countries_option
@resampled_lists_option
@click.option("--shard-size", type=click.IntRange(min=1), default=2048, show_default=True, help="Rows per shard.")
@click.option("--row-group-size", type=click.IntRange(min=1), default=32, show_default=True, help="Rows per row group.")
@click.option("--skip-bad", is_flag=True, help="Record bad patches in skipped.json and go on instead of stopping.")
@subset_option
@click.option(
    "--compression-level",
    type=click.IntRange(-7, 22),
    default=-1,
    show_default=True,
    help="zstd level of the parquet pages (lossless at every level; higher: smaller and slower).",
)
@click.option(
    "--writer",
    type=click.Choice(["ben-hub", "pyarrow"]),
    default="ben-hub",
    show_default=True,
    help="Parquet writer: ben-hub's (fast pixel pages) or pyarrow's (the reference; same table, slower).",
)
@workers_option
@click.option(
    "--job",
    type=(int, int),
    default=(0, 1),
    show_default=True,
    metavar="INDEX COUNT",
    help="Write only this job's share of the shards (for a cluster).",
)
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Write no shard: scan the labels, decide both splits, write a sample of patches to a temporary folder, "
    "and print the counts, shards, estimated size and time, and whether OUT's disk holds it.",
)
@progress_option
@handle_errors
def build(
    archive: Path,
    out: Path,
    layout: str | None,
    with_s1: bool,
    method: str,
    ratios: tuple[float, float, float],
    block: int | None,
    classes: int | None,
    seed: int,
    lists_dir: Path | None,
    metadata: Path | None,
    s1_dir: Path | None,
    countries: Path | None,
    resampled_lists: Path | None,
    shard_size: int,
    row_group_size: int,
    skip_bad: bool,
    subset: bool,
    compression_level: int,
    writer: str,
    workers: int,
    job: tuple[int, int],
    plan_only: bool,
    quiet: bool,
) -> None:
    """Convert ARCHIVE (an unpacked folder, or a downloaded .tar.gz/.tar.zst) into a parquet repository at OUT.

    Resumable: run the same command again after an interruption or a full disk (a warning comes early when the
    disk will not hold the build); on a finished repository it reads and writes nothing.
    """
    from .archive import lists_beside, locate_archive
    from .build import BuildConfig, finished_manifest
    from .build import build as run_build

    spec = locate_archive(archive, with_s1, layout, metadata, s1_dir)
    lists_dir = lists_dir or lists_beside(archive, spec)
    if not 0 <= job[0] < job[1]:
        raise click.BadParameter("INDEX must be in [0, COUNT)", param_hint="--job")
    config = BuildConfig(
        spec=spec,
        method=method,
        ratios=ratios,
        seed=seed,
        block=block,
        classes=classes,
        lists_dir=lists_dir,
        resampled_lists_dir=resampled_lists,
        countries=countries,
        shard_size=shard_size,
        row_group_size=row_group_size,
        skip_bad=skip_bad,
        subset=subset,
        compression_level=compression_level,
        writer=writer,
        workers=workers,
        job_index=job[0],
        job_count=job[1],
    )
    already = finished_manifest(out) is not None
    if plan_only:
        show_plan(config, out, already, not quiet)
        return
    result = run_build(config, out, progress=not quiet)
    if result is None:
        click.echo(f"job {job[0]}/{job[1]} done; other jobs still have shards to write into {out}")
        return
    from .space import size_text

    for line in split_lines(result["splits"]):
        click.echo(line)
    total = size_text(sum(shard["bytes"] for shard in result["shards"]))
    click.echo(f"{result['rows']:,} patches in {len(result['shards']):,} shards ({total}) at {out}")
    if already:
        click.echo(f"{out} is already a finished build: nothing was read or written (`ben-hub verify {out}` "
                   "checks its contents)")  # fmt: skip


def split_lines(splits: dict[str, dict[str, dict[str, int]]]) -> list[str]:
    """A line per configuration: ``original: train 4 / validation 0 / test 1`` (patches), from ``dataset_info``'s
    split sizes."""
    from .repo import in_config_order

    return [f"{name}: " + " / ".join(f"{split} {v['num_examples']:,}" for split, v in sizes.items())
            for name, sizes in in_config_order(splits).items()]  # fmt: skip


def files_text(paths: list[str]) -> str:
    """``1 file``, ``3 files``."""
    return f"{len(paths):,} file{'' if len(paths) == 1 else 's'}"


def first_few(paths: list[str], shown: int = 5) -> str:
    """``a, b, c, ...``: the first ``shown`` of ``paths``."""
    return ", ".join(paths[:shown]) + (", ..." if len(paths) > shown else "")


def duration_text(seconds: float) -> str:
    """``1 h 05 min``, ``12 min``, ``40 s``."""
    minutes = round(seconds / 60)
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def show_plan(config: Any, out: Path, already: bool, progress: bool) -> None:
    """``build --plan``: what the build would write, with the sample it was measured on."""
    from .estimate import estimate_build
    from .space import size_text

    if already:
        click.echo(f"{out} is already a finished build: running it again reads and writes nothing")
        return
    plan = estimate_build(config, out, progress=progress)
    for line in split_lines(plan.splits):
        click.echo(line)
    share = f" (this job: {plan.job_shards:,}, {plan.job_patches:,} patches)" if config.job_count > 1 else ""
    click.echo(f"patches: {plan.patches:,} in {plan.shards:,} shards of up to {config.shard_size:,} rows{share}")
    if plan.problems or plan.absent:
        click.echo(f"left out: {plan.problems:,} bad in their labels, {plan.absent:,} listed but absent")
    each = size_text(plan.sample_bytes / max(plan.sample_patches, 1))
    s1 = f" + {size_text(plan.s1_unsampled_bytes)} for S1 (its download is not read)" if plan.s1_unsampled_bytes else ""
    click.echo(f"sample: {plan.sample_patches:,} patches written in {plan.sample_seconds:.2f} s, {each} each{s1}")
    click.echo(f"size: about {size_text(plan.repository_bytes)} of shards")
    from .build import stream_writers

    at_once = stream_writers(config.workers) if plan.streamed else config.workers  # a tarball: one writer a cell
    workers = f"; -j {config.workers} writes up to {at_once} shards at once" if config.workers > 1 else ""
    stream = f", of which {duration_text(plan.stream_seconds)} reading the whole download" if plan.streamed else ""
    click.echo(f"time: about {duration_text(plan.seconds_one_process)} in one process at the sample's rate{stream}"
               f"{workers}")  # fmt: skip
    staging = f" + {size_text(plan.staging_bytes)} of S1 staging while it runs" if plan.staging_bytes else ""
    short = size_text(plan.needed_bytes - plan.free_bytes)
    verdict = "enough" if plan.enough_space else f"NOT enough: free {short} more"
    free = size_text(plan.free_bytes)
    click.echo(f"disk: needs {size_text(plan.repository_bytes)}{staging}; {free} free at {out}: {verdict}")
    click.echo(f"no shard was written; {out} holds the tarball's label scan for the build" if plan.streamed
               else f"nothing was written to {out}")  # fmt: skip


@main.command()
@click.option(
    "--only",
    "which",
    type=click.Choice(["lists", "reben"]),
    multiple=True,
    help="Fetch only these: the split and exclusion lists, or reBEN's metadata. Default: both.",
)
@handle_errors
def fetch(which: tuple[str, ...]) -> None:
    """Download the public lists and reBEN's metadata into the cache ($BEN_HUB_CACHE or ~/.cache/ben-hub) now,
    verified by content, for builds on machines without network later."""
    from .fetch import prefetch

    outcomes = prefetch(which=which or ("lists", "reben"))
    for name, outcome in outcomes:
        click.echo(f"{name}: {outcome}")
    failed = sum(outcome.startswith("FAILED") for _, outcome in outcomes)
    if failed:
        raise click.ClickException(f"{failed} of {len(outcomes)} files could not be fetched (see above)")


@main.command("split")
@click.argument("source", type=PATH)
@click.option("-o", "--out", type=PATH, required=True, help="Folder for assignment.csv, quality.json/.md, the plot.")
@method_option("fast")
@ratios_option
@click.option("--folds", type=click.IntRange(min=2), default=None, help="K equal folds instead of --ratios.")
@block_option
@classes_option
@seed_option
@lists_dir_option
@resampled_lists_option
@countries_option
@subset_option
@workers_option
@revision_option
@endpoint_option
@handle_errors
def split_command(
    source: Path,
    out: Path,
    method: str,
    ratios: tuple[float, float, float],
    folds: int | None,
    block: int | None,
    classes: int | None,
    seed: int,
    lists_dir: Path | None,
    resampled_lists: Path | None,
    countries: Path | None,
    subset: bool,
    workers: int,
    revision: str | None,
    endpoint: str | None,
) -> None:
    """Split SOURCE (archive folder, built repository: a folder or OWNER/NAME on the Hub, whose labels are read
    without its pixels; reBEN metadata.parquet, or `reben`: the published one, downloaded once) and report its
    quality."""
    from .splits.report import SplitRequest, split_and_report

    request = SplitRequest(
        method=method, ratios=ratios, seed=seed, folds=folds, lists=resampled_lists, block=block, classes=classes
    )
    click.echo(split_and_report(source, out, request, lists_dir, subset, workers, (revision, endpoint), countries))


@main.command()
@click.argument("repo_id", type=str)
@click.option(
    "--config",
    "config_name",
    type=click.Choice(["original", "resampled"]),
    default="resampled",
    show_default=True,
    help="The configuration whose splits' shards are mirrored.",
)
@click.option(
    "--split",
    "splits",
    type=click.Choice(["train", "validation", "test"]),
    multiple=True,
    help="Splits to mirror (repeat it). Default: all three.",
)
@click.option(
    "--band",
    "bands",
    type=click.Choice(list(BANDS)),
    multiple=True,
    help="Bands to keep (repeat it). Default: B04, B03, B02, the loader's default.",
)
@revision_option
@endpoint_option
@progress_option
@handle_errors
def mirror(
    repo_id: str,
    config_name: str,
    splits: tuple[str, ...],
    bands: tuple[str, ...],
    revision: str | None,
    endpoint: str | None,
    quiet: bool,
) -> None:
    """Download, of a published repository's shards, only the bands a training reads (and the ids, labels and
    flags), into a column mirror in $BEN_HUB_CACHE/columns: where the Hub is reachable, for machines that train
    without it (HF_HUB_OFFLINE=1), or ahead of a run."""
    from .bands import RGB
    from .mirror import column_mirror, mirror_report
    from .remote import HubRepo
    from .repo import split_patterns

    chosen = list(splits or ("train", "validation", "test"))
    repo = HubRepo(repo_id, revision, endpoint)
    root = column_mirror(repo, split_patterns(config_name, chosen), list(bands or RGB), progress=not quiet)
    kept, stored, full = mirror_report(root)
    click.echo(f"{root}: {', '.join(kept)} of the shards of {config_name} {'/'.join(chosen)}; {stored / 1e6:,.1f} MB "
               f"on disk for {full / 1e6:,.1f} MB of shards")  # fmt: skip


@main.command()
@click.argument("repo_dir", type=EXISTING)
@click.option("--repo-id", required=True, help="Target dataset repository, OWNER/NAME.")
@click.option("--private", is_flag=True, help="Create the repository as private.")
@click.option("--revision", default=None, help="Target branch (default: main).")
@click.option("--create-pr", is_flag=True, help="Open a pull request instead of committing to the branch.")
@click.option("--commit-message", default="Upload balanced BigEarthNet (ben-hub)", show_default=True,
              help="Message of the push's commit.")  # fmt: skip
@click.option("--files-per-batch", "--files-per-commit", "files_per_batch", type=click.IntRange(min=1), default=64,
              show_default=True, help="Files uploaded at a time (all land in one commit; run again after a failure, "
              "a push sends only what the Hub lacks).")  # fmt: skip
@endpoint_option
@dry_run_option
@progress_option
@handle_errors
def push(
    repo_dir: Path,
    repo_id: str,
    private: bool,
    revision: str | None,
    create_pr: bool,
    commit_message: str,
    files_per_batch: int,
    endpoint: str | None,
    dry_run: bool,
    quiet: bool,
) -> None:
    """Publish the built REPO_DIR to the Hub (resumable; token from HF_TOKEN or `hf auth login`)."""
    from .hub import PushConfig
    from .hub import push as run_push

    config = PushConfig(
        repo_id=repo_id,
        private=private,
        revision=revision,
        create_pr=create_pr,
        commit_message=commit_message,
        files_per_batch=files_per_batch,
        endpoint=endpoint,
    )
    report = run_push(repo_dir, config, dry_run=dry_run, progress=not quiet)
    verb = "would upload" if dry_run else "uploaded"
    for path, size in report["upload"]:
        click.echo(f"{verb} {path} ({size:,} bytes)")
    removed = "would delete" if dry_run else "deleted"
    for path in report["delete"]:
        click.echo(f"{removed} {path} (on the Hub from an earlier push, not in this build)")
    others = report["left_out"]
    if others:
        click.echo(f"left out {files_text(others)} of {repo_dir} not the build's: {first_few(others)} (`hf upload` "
                   "them if they belong in the dataset repository)")  # fmt: skip
    click.echo(
        f"{verb} {len(report['upload'])} files ({report['bytes']:,} bytes) to {repo_id}; "
        f"{report['already_published']} already published"
        + (f"; {removed} {len(report['delete'])}" if report["delete"] else "")
    )
    if report.get("already_proposed"):
        click.echo(f"pull request {report['pr_url']} holds this build already (open): none other opened")
    elif report.get("pr_url") or report.get("commit_url"):
        click.echo(f"pull request: {report['pr_url']}" if report.get("pr_url") else f"commit: {report['commit_url']}")


@main.command()
@click.argument("repo", type=str)
@revision_option
@click.option(
    "--download",
    is_flag=True,
    help="A Hub id: download the whole repository and run every check. Without it a Hub id is checked where it "
    "is (file list, sha256, footers, small files, and the patch id, label and flag columns by range requests): all "
    "but the band statistics, which need every pixel.",
)
@endpoint_option
@click.option(
    "--archive",
    type=EXISTING,
    default=None,
    help="Also compare the stored patches with this archive (folder or download, as given to build): every band "
    "bit for bit, labels, georeferencing, S1 twins.",
)
@layout_option()
@s1_option()
@metadata_option
@s1_dir_option
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="With --archive: compare this many patches, drawn with --seed (as many as the repository holds or more: "
    "every patch, as --all).",
)
@click.option("--all", "every", is_flag=True, help="With --archive: compare every patch, and find unstored ones.")
@click.option(
    "--report",
    type=PATH,
    default=None,
    help="With --archive: also write every difference (the screen lists the first 50) to this file, one JSON "
    "object a line: patch_id, what, detail.",
)
@seed_option
@workers_option
@progress_option
@handle_errors
def verify(
    repo: str,
    revision: str | None,
    download: bool,
    endpoint: str | None,
    archive: Path | None,
    layout: str | None,
    with_s1: bool,
    metadata: Path | None,
    s1_dir: Path | None,
    sample: int,
    every: bool,
    report: Path | None,
    seed: int,
    workers: int,
    quiet: bool,
) -> None:
    """Check REPO (a local folder or a Hub dataset id): files, hashes, rows, disjointness, statistics, card; with
    --archive, also that its patches equal the archive's, pixel for pixel.

    A Hub id is checked on the Hub without downloading its shards (the band statistics recount needs --download,
    which --archive implies)."""
    from .hub import is_local
    from .remote import verify_repo
    from .repo import build_files

    root, summary = verify_repo(repo, revision, endpoint, download or archive is not None, workers, not quiet)
    checks = "every other check passed" if summary["card_skipped"] else "every check passed"
    if root is None:
        click.echo(
            f"ok: {summary['shards']} shards, {summary['patches']:,} patches on the Hub at {repo}@"
            f"{summary['commit'][:12]} (shards not downloaded: file list, sha256, footers, id/label/flag columns), "
            f"{checks}; not checked: {summary['not_checked']} (--download)"
        )
        return
    click.echo(f"ok: {summary['shards']} shards, {summary['patches']:,} patches, {checks}")
    if is_local(repo, revision):
        others = build_files(root)[1]
        if others:
            one = len(others) == 1
            click.echo(f"note: {files_text(others)} in {repo} {'is' if one else 'are'} not the build's; `ben-hub push` "
                       f"leaves {'it' if one else 'them'} out: {first_few(others)}")  # fmt: skip
    if archive is not None:
        which = None if every else sample
        compare_archive(root, archive, layout, with_s1, metadata, s1_dir, which, seed, workers, report, quiet)


def compare_archive(
    root: Path,
    archive: Path,
    layout: str | None,
    with_s1: bool,
    metadata: Path | None,
    s1_dir: Path | None,
    sample: int | None,
    seed: int,
    workers: int,
    report_file: Path | None,
    quiet: bool,
) -> None:
    """``verify --archive``: run the comparison and report it (exit 1 on any difference)."""
    from .archive import locate_archive
    from .audit import audit, build_layout, differences_file
    from .bands import BANDS

    spec = locate_archive(archive, with_s1, layout or build_layout(root), metadata, s1_dir)
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(differences_file(report_file)) if report_file is not None else None
        report = audit(root, spec, sample, seed, with_s1, workers, progress=not quiet, sink=sink)
    which = "all" if report.every else f"a sample (seed {seed}) of the"
    click.echo(f"compared {report.compared:,} patches, {which} {report.stored:,} stored, with {archive}")
    if report_file is not None:
        click.echo(f"wrote {report.found:,} difference{'' if report.found == 1 else 's'} to {report_file}")
    if report.ok:
        twins = " and S1 twins" if any(BANDS[b].sensor == "s1" for b in report.bands) else ""
        click.echo(f"ok: {', '.join(report.bands)} bit-identical; labels, georeferencing{twins} equal")
        return
    for difference in report.differences:
        click.echo(f"  {difference}", err=True)
    raise click.ClickException(report.verdict())


@main.command()
@click.argument("repo_dir", type=EXISTING)
@click.option("--repo-id", default=None, help="Repository id for the loading snippets (default: balanced-bigearthnet).")
@handle_errors
def card(repo_dir: Path, repo_id: str | None) -> None:
    """Re-render REPO_DIR's README.md and its plots (label counts, example patches) from its data."""
    from .card import write_card

    write_card(repo_dir, repo_id)
    click.echo(f"wrote {repo_dir / 'README.md'}")


@main.command()
@click.argument("runs_dir", type=EXISTING)
@click.option(
    "-o", "--out", type=PATH, default=None,
    help="Where to write leaderboard.{md,csv,json}, losses.png, per_class.{md,csv,json} and per_class_f1.png.",
)  # fmt: skip
@click.option("--repo", "repo_dir", type=EXISTING, default=None, help="Also put the table into this repository's card.")
@click.option("--push-models", "owner", default=None, help="Publish each run as OWNER/<run name> with model-index.")
@click.option("--dataset-id", default="balanced-bigearthnet", show_default=True, help="Dataset named in model cards.")
@dry_run_option
@handle_errors
def leaderboard(
    runs_dir: Path, out: Path | None, repo_dir: Path | None, owner: str | None, dataset_id: str, dry_run: bool
) -> None:
    """Aggregate RUNS_DIR/*/run.json into the paper's Table 1 (mean ± std over seeds) and Fig. 5."""
    from . import leaderboard as board

    target = out or runs_dir / "leaderboard"
    rows = board.write_outputs(runs_dir, target)
    click.echo(board.markdown(rows))
    if started := board.unfinished(runs_dir):
        click.echo(f"{len(started)} unfinished run(s) not in the table (no run.json): {first_few(started)}", err=True)
    if repo_dir is not None:
        board.publish_to_repo(target, repo_dir)
        click.echo(f"updated the card of {repo_dir}; publish it with `ben-hub push`")
    if owner:
        for repo_id in board.push_models(runs_dir, owner, dataset_id, dry_run):
            click.echo(f"{'would push' if dry_run else 'pushed'} model {repo_id}")


if __name__ == "__main__":
    main()
