"""Fast batches from a built repository: whole Arrow row groups to arrays, no per-sample Python.

A split is the list of its shards' row groups (32 rows each by default).  Each epoch shuffles the row
groups, reads ``shuffle_buffer`` of them at a time (only the chosen band columns and the label column),
shuffles the rows of that buffer and cuts batches: memory stays at one buffer whatever the split size.
Bands of a coarser grid are brought to the finest chosen grid by pixel repetition (nearest neighbour; the
default RGB bands are all 10 m, so nothing is resampled).  Inputs are normalised with the per-band mean and
standard deviation of the configuration's train split from ``stats.json``; targets are multi-hot float32.

:class:`DeviceCache` (needs torch) keeps a whole split's chosen bands on a GPU as uint16 (with k processes, a
k-th of it on each) and forms batches there, so the CPU never limits a step (RGB of all 519,284 v1 patches is
about 45 GB).  With k processes each streams, decodes and batches only its own row groups.
"""

from __future__ import annotations

import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .bands import BANDS, RGB
from .errors import DeviceMemoryError, RepoError
from .pages import leaf_columns, read_grid
from .repo import CONFIGS, cell_in_split, cell_of, load_json, load_manifest, split_patterns


@dataclass(frozen=True)
class LoaderConfig:
    """What to read.  ``labels``: ``labels`` (43 classes, v1) or ``labels_19``.

    ``cache_dir``: decode the split's chosen bands once into raw ``.npy`` files there (uint16, written
    atomically, keyed by the repository's manifest), then serve every epoch from the memory map: decoding a
    120x120 band from its parquet page costs 28 µs (64-69 through pyarrow; ``bench/parts.py``), a memory-mapped
    gather almost nothing (``bench/loader.py``).

    ``threads``: row groups decoded at once (zstd, numpy and pyarrow release the GIL; ``bench/loader.py``).
    Batches are the same for any number.

    ``raw``: batches of the bands' stored values (uint16, or float32 when an S1 band is chosen), gathered but
    not normalised, for :class:`DeviceBatches` to normalise on the accelerator: half the bytes of float32 cross
    the bus and the CPU does no arithmetic.
    """

    config: str = "resampled"
    bands: tuple[str, ...] = RGB
    labels: str = "labels"
    batch_size: int = 256
    shuffle_buffer: int = 64
    normalize: bool = True
    cache_dir: str | None = None
    raw: bool = False
    threads: int = 1

    def __post_init__(self) -> None:
        """Raises ``ValueError`` naming a setting no read could use: an unknown configuration, label column or
        band, a band named twice, or a count below 1."""
        problems = [f"config {self.config!r} is not one of {', '.join(CONFIGS)}"] if self.config not in CONFIGS else []
        if self.labels not in ("labels", "labels_19"):
            problems.append(f"labels {self.labels!r} is neither 'labels' (43 classes) nor 'labels_19'")
        if not self.bands or any(b not in BANDS for b in self.bands):
            problems.append(f"bands {self.bands!r}: choose one or more of {', '.join(BANDS)}")
        elif len(set(self.bands)) < len(self.bands):
            problems.append(f"bands {self.bands!r} name a band twice")
        for name in ("batch_size", "shuffle_buffer", "threads"):
            if getattr(self, name) < 1:
                problems.append(f"{name} {getattr(self, name)!r} is below 1")
        if problems:
            raise ValueError(f"LoaderConfig: {'; '.join(problems)}")


CACHE_CHUNK = 4
"""Samples gathered and normalised together, band by band (4 120x120 grids: 230 KB of float32, which stays in a
core's L2 cache between the multiply and the add)."""


def spans(rows: int, parts: int) -> list[range]:
    """``range(rows)`` cut into at most ``parts`` contiguous pieces of whole ``CACHE_CHUNK`` multiples."""
    chunks = -(-rows // CACHE_CHUNK)
    step = -(-chunks // max(parts, 1)) * CACHE_CHUNK
    return [range(start, min(start + step, rows)) for start in range(0, rows, step)] if rows else []


def unit_rows(units: list[tuple[str, int, int]], part: tuple[int, int] = (0, 1)) -> np.ndarray:
    """File-order indices of the rows of row groups ``i, i + k, ...`` of ``units`` (``part=(i, k)``), in that
    order: the rows an unshuffled streamed pass, or a :class:`DeviceCache`, of that part holds."""
    ends = np.cumsum([n for _, _, n in units], dtype=np.int64)
    pieces = [np.arange(end - n, end) for (_, _, n), end in zip(units, ends, strict=True)][part[0] :: part[1]]
    return np.concatenate(pieces) if pieces else np.empty(0, np.int64)


def input_spec(root: Path, config: LoaderConfig) -> dict[str, Any]:
    """What a model trained on ``config``'s batches of the repository at ``root`` takes and gives, for a model card
    or code that runs the model: the bands in order, the grid they are brought to (pixels a side, coarser bands
    repeated up), each band's mean and standard deviation (the configuration's train split, ``stats.json``) that
    inputs are normalised with, ``(x - mean) / std``, and the classes in the order of the outputs."""
    from .labels import LABELS_19, LABELS_43

    moments = load_json(root, "stats.json")["band_stats"][config.config]
    return {
        "bands": list(config.bands),
        "size": max(BANDS[b].size for b in config.bands),
        "mean": [moments[b]["mean"] for b in config.bands],
        "std": [moments[b]["std"] for b in config.bands],
        "labels": config.labels,
        "classes": list(LABELS_43 if config.labels == "labels" else LABELS_19),
    }


def num_classes(labels: str) -> int:
    return 43 if labels == "labels" else 19


def multi_hot(column: pa.Array | pa.ChunkedArray, n_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """A ``list<int>`` column (class ids per row) as a multi-hot ``(rows, n_classes)`` matrix."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    lengths = column.value_lengths().to_numpy(zero_copy_only=False)
    out = np.zeros((len(column), n_classes), dtype=dtype)
    out[np.repeat(np.arange(len(column)), lengths), column.flatten().to_numpy()] = 1
    return out


def grid_values(column: pa.Array | pa.ChunkedArray, size: int) -> np.ndarray:
    """A band column (``list<list<...>>``, one ``size x size`` grid a row) as a ``(rows, size, size)`` array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.flatten().flatten().to_numpy().reshape(len(column), size, size)


def stack_bands(planes: dict[str, np.ndarray], bands: tuple[str, ...]) -> np.ndarray:
    """Band grids ``(rows, h, w)`` stacked as ``(rows, bands, size, size)``, coarser grids repeated up."""
    size = max(BANDS[b].size for b in bands)
    stacked = []
    for band in bands:
        values, factor = planes[band], size // BANDS[band].size
        if factor > 1:
            values = values.repeat(factor, axis=1).repeat(factor, axis=2)
        stacked.append(values)
    return np.stack(stacked, axis=1)


def empty_split(folder: Path, manifest: dict[str, Any], config: str, split: str) -> str:
    """What to say of a split with no patch (a ``--subset`` build of a few patches can leave one empty)."""
    held = manifest.get("splits", {}).get(config, {})
    sizes = ", ".join(f"{name} {held[name]['num_examples']:,}" for name in CONFIGS[config] if name in held)
    return (
        f"{folder}: configuration {config!r} has no {split} patch (its splits here: {sizes or 'none'}); "
        f"a build of few patches ({manifest.get('rows', 0):,} here) can leave a split empty: build it from more"
    )


class SplitReader:
    """Batches of one split of one configuration of a built repository (a folder, or a Hub id downloaded)."""

    def __init__(self, root: Path | str, split: str, config: LoaderConfig = LoaderConfig()) -> None:
        """``root``: a built repository's folder, or a Hub dataset id (of this split's shards only the chosen bands and
        the labels are downloaded, into a column mirror: :mod:`ben_hub.mirror`)."""
        if config.config not in CONFIGS or split not in CONFIGS[config.config]:
            raise RepoError(f"no split {split!r} in configuration {config.config!r}; see the card's table")
        folder = Path(root)
        if not folder.is_dir():
            from .hub import resolve_repo

            patterns = split_patterns(config.config, [split])  # of each shard, the columns read here
            folder, _ = resolve_repo(str(root), patterns=patterns, columns=[*config.bands, config.labels])
        self.root, self.split, self.config = folder, split, config
        manifest = load_manifest(folder)
        shards = [s for s in manifest["shards"] if cell_in_split(cell_of(s["path"]), config.config, split)]
        if not shards:
            raise RepoError(empty_split(folder, manifest, config.config, split))
        footers = [(str(folder / s["path"]), pq.read_metadata(folder / s["path"])) for s in shards]  # a read a shard
        self.units = [
            (path, g, meta.row_group(g).num_rows) for path, meta in footers for g in range(meta.num_row_groups)
        ]
        self.rows = sum(u[2] for u in self.units)
        self.n_classes = num_classes(config.labels)
        stored = set(footers[0][1].schema.to_arrow_schema().names) if footers else set()
        if absent := [b for b in config.bands if b not in stored]:
            raise RepoError(
                f"{folder} stores no {', '.join(absent)} band (it has {', '.join(b for b in BANDS if b in stored)}): "
                "choose among those, or build the repository again with them (S1's VV and VH need --s1 and the S1 part)"
            )
        moments = load_json(folder, "stats.json")["band_stats"].get(config.config, {})
        missing = [b for b in config.bands if b not in moments]
        if config.normalize and missing:
            raise RepoError(f"stats.json has no train statistics for {missing} in {config.config!r}")
        identity = {"mean": 0.0, "std": 1.0}
        chosen = [moments[b] if config.normalize else identity for b in config.bands]
        self.mean = np.array([m["mean"] for m in chosen], dtype=np.float32)
        self.std = np.array([m["std"] for m in chosen], dtype=np.float32)
        self.pool: list[np.ndarray] = []
        self.local = threading.local()  # each decoding thread opens its own shard readers and files
        self.handles: set[Any] = set()
        self.lock = threading.Lock()
        self.executor: ThreadPoolExecutor | None = None
        self.held: tuple[dict[str, np.ndarray], np.ndarray] | None = None
        self.raw_dtype = np.result_type(*[np.dtype(BANDS[b].dtype) for b in config.bands])
        size = max(BANDS[b].size for b in config.bands)
        self.sample_shape = (len(config.bands), size, size)  # every band on the finest chosen grid
        self.scale = (1.0 / self.std)[:, None, None].astype(np.float32)
        self.shift = (-self.mean / self.std)[:, None, None].astype(np.float32)

    def __len__(self) -> int:
        return -(-self.rows // self.config.batch_size)

    def read_unit(self, path: str, group: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """One row group of ``rows`` rows: raw band values ``(rows, bands, size, size)``, coarser grids repeated
        up, and multi-hot uint8 targets."""
        planes = {b: np.empty((rows, *BANDS[b].shape), dtype=BANDS[b].dtype) for b in self.config.bands}
        targets = np.empty((rows, self.n_classes), dtype=np.uint8)
        self.read_planes(path, group, planes, targets)
        return stack_bands(planes, self.config.bands), targets

    def read_planes(self, path: str, group: int, planes: dict[str, np.ndarray], targets: np.ndarray) -> None:
        """Decode one row group into ``planes`` (per band, ``(rows, h, w)`` at the band's own grid, C-contiguous)
        and ``targets`` (``(rows, classes)``), each exactly as many rows as the group has.

        Bands are read from their pages directly (:mod:`ben_hub.pages`, about 2x faster than pyarrow's nested
        lists) into the caller's arrays; a chunk that reader does not handle sends the row group through pyarrow.
        """
        parquet, handle, leaves, schema = self.open_shard(path)
        for band in self.config.bands:
            spec = BANDS[band]
            done = read_grid(parquet, handle, group, leaves[band], spec.shape, spec.dtype, planes[band], schema)
            if done is None:  # not a chunk the page reader can check: the whole row group through pyarrow
                table = parquet.read_row_group(group, columns=[*self.config.bands, self.config.labels])
                for name in self.config.bands:
                    planes[name][...] = grid_values(table.column(name), BANDS[name].size)
                targets[...] = multi_hot(table.column(self.config.labels), self.n_classes, np.uint8)
                return
        labels = parquet.read_row_group(group, columns=[self.config.labels]).column(0)
        targets[...] = multi_hot(labels, self.n_classes, np.uint8)

    def open_shard(self, path: str) -> tuple[pq.ParquetFile, Any, dict[str, int], pa.Schema]:
        """This thread's parquet reader of the shard, an open file, its leaf column of each band and its Arrow
        schema (the last 16 shards kept open per thread)."""
        shards: dict[str, tuple[pq.ParquetFile, Any, dict[str, int], pa.Schema]] | None
        shards = getattr(self.local, "shards", None)
        if shards is None:
            shards = self.local.shards = {}
        if path not in shards:
            if len(shards) >= 16:
                _, handle, _, _ = shards.pop(next(iter(shards)))
                handle.close()
                with self.lock:
                    self.handles.discard(handle)
            parquet = pq.ParquetFile(path, pre_buffer=False)
            leaves = leaf_columns(parquet)
            handle = open(path, "rb")  # noqa: SIM115 (closed on eviction or close())
            with self.lock:
                self.handles.add(handle)
            shards[path] = (parquet, handle, leaves, parquet.schema_arrow)
        return shards[path]

    def close(self) -> None:
        """Close the shard files opened by every decoding thread and stop the threads."""
        if self.executor is not None:
            self.executor.shutdown()
            self.executor = None
        with self.lock:
            for handle in self.handles:
                handle.close()
            self.handles.clear()
        self.local = threading.local()

    def in_threads(self, work: Callable[[Any], Any], items: list[Any]) -> Iterator[Any]:
        """``work`` over ``items``, results in order, on ``config.threads`` threads (at most 4 items a thread
        ahead of the consumer)."""
        if self.config.threads <= 1:
            yield from map(work, items)
            return
        if self.executor is None:
            self.executor = ThreadPoolExecutor(self.config.threads, thread_name_prefix="ben-hub-decode")
        block = 4 * self.config.threads
        for start in range(0, len(items), block):
            yield from self.executor.map(work, items[start : start + block])

    def output(self, shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
        """An array for a batch: a pooled one that nobody references any more, else a new one.

        Fresh 40 MB arrays cost as much in page faults as the normalisation itself.  A pooled buffer is
        reused only when its reference count shows that the caller has let go of it (a stored batch, or a
        tensor made from it with ``torch.from_numpy``, keeps its buffer), so batches are never overwritten.
        """
        for buffer in self.pool:
            if buffer.shape == shape and buffer.dtype == dtype and sys.getrefcount(buffer) <= 3:  # pool, loop, call
                return buffer
        buffer = np.empty(shape, dtype=dtype)
        self.pool = [*self.pool[-3:], buffer]
        return buffer

    def batches(
        self,
        epoch: int = 0,
        shuffle: bool = False,
        seed: int = 0,
        part: tuple[int, int] = (0, 1),
        even: bool = False,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(inputs float32 (n, c, h, w), targets float32 (n, classes))``; deterministic for (seed, epoch, part).

        ``part=(i, k)``, process ``i`` of ``k``: streaming, it decodes only row groups ``i, i + k, ...`` of the
        epoch's row-group order and cuts its batches from their rows (the ``k`` parts together hold every row
        once; ``k = 1`` is the whole sequence).  From the decoded cache, where a batch is a cheap gather, it takes
        batches ``i, i + k, ...`` of the one-process sequence.  ``even``: every part yields :meth:`steps` batches,
        the same number, so that processes stepping together end together.

        Streaming: each window of ``shuffle_buffer`` row groups (after the previous window's leftover rows) is
        decoded straight into per-band arrays kept from window to window, its rows are permuted, and each batch
        is gathered and normalised from there ``CACHE_CHUNK`` samples at a time: no concatenation, no permuted
        copy, no stacking pass.
        """
        steps = self.steps(epoch, shuffle, seed, part, even)
        if self.config.cache_dir is not None:
            yield from itertools.islice(self.cached_batches(epoch, shuffle, seed, part), steps)
            return
        mine, every = part
        rng = np.random.default_rng([seed, epoch])
        units = [self.units[i] for i in self.unit_order(rng, shuffle)[mine::every]]
        # one process keeps drawing from the epoch's generator (its batches predate parts); several get their own
        rows_rng = rng if every == 1 else np.random.default_rng([seed, epoch, mine, every])
        yield from itertools.islice(self.stream(units, shuffle, rows_rng), steps)

    def eval_rows(self, part: tuple[int, int] = (0, 1)) -> np.ndarray:
        """File-order indices of the rows that unshuffled :meth:`batches` of ``part`` yield, in that order (a
        prediction's row of the split: :meth:`in_cell`)."""
        mine, every = part
        if self.config.cache_dir is None:
            return unit_rows(self.units, part)
        size = self.config.batch_size
        starts = range(mine * size, self.rows, every * size)  # batches i, i + k, ... of the one-process sequence
        pieces = [np.arange(start, min(start + size, self.rows)) for start in starts]
        return np.concatenate(pieces) if pieces else np.empty(0, np.int64)

    def in_cell(self, cell: str) -> np.ndarray:
        """Whether each row of the split (file order) lies in ``cell``'s shards: a build's cells are the pairs
        (official split, resampled split), so ``test-test`` holds the test patches both configurations share."""
        flags = [Path(path).parent.name == cell for path, _, _ in self.units]
        return np.repeat(np.array(flags, dtype=bool), [n for _, _, n in self.units])

    def unit_order(self, rng: np.random.Generator, shuffle: bool) -> np.ndarray:
        """The epoch's row-group order: ``rng``'s first draw when shuffling, else file order."""
        return rng.permutation(len(self.units)) if shuffle else np.arange(len(self.units))

    def steps(
        self, epoch: int = 0, shuffle: bool = False, seed: int = 0, part: tuple[int, int] = (0, 1), even: bool = False
    ) -> int:
        """How many batches :meth:`batches` yields for these arguments (``even``: the fewest of any part)."""
        mine, every = part
        size = self.config.batch_size
        if self.config.cache_dir is not None:
            return len(self) // every if even else len(range(mine, len(self), every))
        order = self.unit_order(np.random.default_rng([seed, epoch]), shuffle)
        counts = [-(-rows // size) for rows in self.part_rows(every, order)]
        return min(counts) if even else counts[mine]

    def stream(
        self, units: list[tuple[str, int, int]], shuffle: bool, rng: np.random.Generator
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every row of ``units`` once, in batches (the last one short), windows decoded in turn."""
        step, size = (self.config.shuffle_buffer if shuffle else 1), self.config.batch_size
        carry: tuple[dict[str, np.ndarray], np.ndarray] | None = None
        for start in range(0, len(units), step):
            window = units[start : start + step]
            kept = len(carry[1]) if carry else 0
            planes, targets = self.buffers(kept + sum(n for _, _, n in window))
            if carry:  # leftovers first: unshuffled order is file order
                for band, values in carry[0].items():
                    planes[band][:kept] = values
                targets[:kept] = carry[1]
            jobs, at = [], kept
            for path, group, n in window:
                jobs.append((path, group, {b: v[at : at + n] for b, v in planes.items()}, targets[at : at + n]))
                at += n
            for _ in self.in_threads(lambda job: self.read_planes(*job), jobs):  # each job fills its own rows
                pass
            perm = rng.permutation(at) if shuffle else np.arange(at)
            full = at // size * size
            for b in range(0, full, size):
                yield self.gather(planes, targets, perm[b : b + size])
            rest = perm[full:]
            carry = ({band: values[rest] for band, values in planes.items()}, targets[rest])
        if carry and len(carry[1]):
            yield self.gather(carry[0], carry[1], np.arange(len(carry[1])))

    def buffers(self, rows: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per-band raw arrays and uint8 targets with ``rows`` rows, views of arrays kept between windows and
        epochs (fresh ones cost page faults); they grow when a window needs more."""
        if self.held is None or len(self.held[1]) < rows:
            planes = {b: np.empty((rows, *BANDS[b].shape), dtype=BANDS[b].dtype) for b in self.config.bands}
            self.held = planes, np.empty((rows, self.n_classes), dtype=np.uint8)
        planes, targets = self.held
        return {b: v[:rows] for b, v in planes.items()}, targets[:rows]

    def gather(
        self, planes: dict[str, np.ndarray], targets: np.ndarray, index: np.ndarray, upsampled: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``index`` as a normalised float32 batch (coarser grids repeated up, unless ``upsampled`` already)
        and float32 targets, a few samples at a time so that each gathered chunk is normalised while it is still
        in the CPU cache; with ``threads``, each thread fills its own part of the batch."""
        bands, raw = self.config.bands, self.config.raw
        size = self.sample_shape[-1]
        out = self.output((len(index), *self.sample_shape), self.raw_dtype if raw else np.float32)

        def fill(span: range) -> None:
            for at in range(span.start, span.stop, CACHE_CHUNK):
                end = min(at + CACHE_CHUNK, span.stop)
                for k, band in enumerate(bands):
                    values, factor = planes[band][index[at:end]], 1 if upsampled else size // BANDS[band].size
                    if factor > 1:
                        values = values.repeat(factor, axis=1).repeat(factor, axis=2)
                    target = out[at:end, k]
                    if raw:
                        target[...] = values
                        continue
                    np.multiply(values, self.scale[k], out=target, casting="unsafe")
                    np.add(target, self.shift[k], out=target)

        for _ in self.in_threads(fill, spans(len(index), self.config.threads)):
            pass
        return out, targets[index].astype(np.float32)

    def cache_paths(self) -> tuple[Path, Path]:
        """Where the decoded split lives: keyed by manifest content, configuration, split, bands, labels."""
        import hashlib

        key = hashlib.sha256((self.root / "manifest.json").read_bytes())
        key.update(f"{self.config.config}/{self.split}/{','.join(self.config.bands)}/{self.config.labels}".encode())
        folder = Path(self.config.cache_dir or ".") / key.hexdigest()[:24]
        return folder / "x.npy", folder / "y.npy"

    def cached(self) -> tuple[np.ndarray, np.ndarray]:
        """The decoded split as memory maps, decoding it first if needed (one row group at a time)."""
        import os

        x_path, y_path = self.cache_paths()
        if not (x_path.exists() and y_path.exists()):
            x_path.parent.mkdir(parents=True, exist_ok=True)
            shape = (self.rows, *self.sample_shape)
            tmp_x, tmp_y = x_path.with_suffix(f".{os.getpid()}.tmp"), y_path.with_suffix(f".{os.getpid()}.tmp")
            xs = np.lib.format.open_memmap(tmp_x, mode="w+", dtype=self.raw_dtype, shape=shape)
            ys = np.zeros((self.rows, self.n_classes), dtype=np.uint8)
            at = 0
            for x, y in self.in_threads(lambda unit: self.read_unit(*unit), self.units):
                xs[at : at + len(x)], ys[at : at + len(x)] = x, y
                at += len(x)
            xs.flush()
            del xs
            with tmp_y.open("wb") as handle:
                np.save(handle, ys)
            os.replace(tmp_y, y_path)
            os.replace(tmp_x, x_path)  # x last: its presence means the cache is complete
        return np.load(x_path, mmap_mode="r"), np.load(y_path)

    def cached_batches(
        self, epoch: int, shuffle: bool, seed: int, part: tuple[int, int] = (0, 1)
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Batches from the memory map, gathered and normalised a few samples at a time.

        Each chunk of ``CACHE_CHUNK`` samples is copied out of the map and normalised while it is still in the
        CPU cache, so the batch crosses main memory once (the float32 output) instead of three times.
        """
        x, y = self.cached()
        planes = {band: x[:, k] for k, band in enumerate(self.config.bands)}  # views of the map, upsampled
        order = np.random.default_rng([seed, epoch]).permutation(len(y)) if shuffle else np.arange(len(y))
        size, (mine, every) = self.config.batch_size, part
        for start in range(mine * size, len(order), every * size):
            index = np.sort(order[start : start + size])  # sorted: sequential reads
            if self.config.raw:
                yield x[index], y[index].astype(np.float32)
                continue
            yield self.gather(planes, y, index, upsampled=True)

    def raw_chunks(self, rows: int = 1024, part: tuple[int, int] = (0, 1)) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Row groups ``i, i + k, ...`` of the split (``part=(i, k)``; all of them by default) in file order,
        about ``rows`` rows at a time: raw band values and multi-hot uint8 targets.

        From the decoded cache when ``cache_dir`` is set, else row group by row group; memory stays at one
        chunk (1,024 RGB 120x120 patches: 88 MB), not the split (311,570 patches: 27 GB).
        """
        units = self.units[part[0] :: part[1]]
        pieces: Iterator[tuple[np.ndarray, np.ndarray]]
        if self.config.cache_dir is not None:
            xs_map, ys_map = self.cached()
            ends = dict(zip(self.units, np.cumsum([n for _, _, n in self.units]).tolist(), strict=True))
            pieces = ((xs_map[ends[u] - u[2] : ends[u]], ys_map[ends[u] - u[2] : ends[u]]) for u in units)  # views
        else:
            pieces = self.in_threads(lambda unit: self.read_unit(*unit), units)
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        for x, y in pieces:
            xs.append(x)
            ys.append(y)
            if sum(map(len, xs)) >= rows:
                yield np.concatenate(xs), np.concatenate(ys)  # a copy, also of the read-only map
                xs, ys = [], []
        if xs:
            yield np.concatenate(xs), np.concatenate(ys)

    def part_rows(self, every: int, order: np.ndarray | None = None) -> list[int]:
        """Rows in each part ``(j, every)``, ``j = 0 .. every - 1``: row groups ``j, j + every, ...`` of ``order``
        (an epoch's :meth:`unit_order`; file order, as :meth:`raw_chunks` and :class:`DeviceCache` take them,
        by default)."""
        sizes = np.array([n for _, _, n in self.units], dtype=np.int64)
        if order is not None:
            sizes = sizes[order]
        return [int(sizes[j::every].sum()) for j in range(every)]


class DeviceCache:
    """A split held on a device (uint16 inputs, uint8 targets); batches are formed and normalised there.

    ``part=(i, k)``, process ``i`` of ``k``: the device holds only row groups ``i, i + k, ...`` (a k-th of the
    split: RGB of the 311,570-patch resampled train split is 27 GB on one GPU, 3.4 GB on each of eight) and
    every epoch shuffles and batches those rows only; the ``k`` parts together hold every row once.

    ``fuse`` (default: on CUDA devices where Triton is usable): each batch is gathered, widened and normalised by
    one kernel that ``torch.compile`` generates from :func:`gather_normalized` (compiled at the first batch of
    each shape), instead of six eager kernels that write the batch five times over; the same values (tested bit
    for bit on the CPU; Triton's float32 division may differ from eager CUDA's by an ulp).  On one H100, side by
    side (``bench/gpu_check.py``): ShortCNN trained at 61,332 images/s fed so, 58,624 with the eager kernels, and
    61,805 on a batch already in place.
    """

    def __init__(
        self, reader: SplitReader, device: Any, part: tuple[int, int] = (0, 1), fuse: bool | None = None
    ) -> None:
        """Copy this part of ``reader``'s split to ``device`` chunk by chunk (host memory: one chunk, see
        ``raw_chunks``)."""
        import torch

        self.torch, self.device, self.batch_size = torch, device, reader.config.batch_size
        self.n_classes, self.part, self.reader = reader.n_classes, part, reader
        self.part_rows = reader.part_rows(part[1])
        rows = self.part_rows[part[0]]
        kind = host_tensor(np.empty(0, reader.raw_dtype)).dtype  # uint16 as its int16 bit pattern (normalized)
        check_fits(reader, rows * (int(np.prod(reader.sample_shape)) * reader.raw_dtype.itemsize + self.n_classes),
                   device)  # fmt: skip
        self.x = torch.empty((rows, *reader.sample_shape), dtype=kind, device=device)  # this part, once
        self.y = torch.empty((rows, self.n_classes), dtype=torch.uint8, device=device)
        at = 0
        for raw, targets in reader.raw_chunks(part=part):
            self.x[at : at + len(raw)] = host_tensor(raw)
            self.y[at : at + len(raw)] = torch.from_numpy(targets)
            at += len(raw)
        if at != rows:
            raise RepoError(f"{reader.root}: the {reader.split} split gave {at} rows, its footers say {rows}")
        self.stats = DeviceStats(reader, device)
        self.fused, self.take = batch_kernel(gather_normalized, device, fuse)

    def __len__(self) -> int:
        """Batches of this part."""
        return -(-len(self.y) // self.batch_size)

    def steps(
        self, epoch: int = 0, shuffle: bool = False, seed: int = 0, part: tuple[int, int] = (0, 1), even: bool = False
    ) -> int:
        """Batches that :meth:`batches` yields (``even``: those of the part with the fewest)."""
        self.check(part)
        counts = [-(-rows // self.batch_size) for rows in self.part_rows]
        return min(counts) if even else counts[part[0]]

    def eval_rows(self, part: tuple[int, int] = (0, 1)) -> np.ndarray:
        """File-order indices of the split's rows that unshuffled :meth:`batches` yield (this part's row groups)."""
        self.check(part)
        return unit_rows(self.reader.units, part)

    def in_cell(self, cell: str) -> np.ndarray:
        return self.reader.in_cell(cell)

    def check(self, part: tuple[int, int]) -> None:
        if tuple(part) != tuple(self.part):
            raise ValueError(f"this DeviceCache holds part {self.part} of the split, not {part}")

    def batches(
        self, epoch: int = 0, shuffle: bool = False, seed: int = 0, part: tuple[int, int] = (0, 1), even: bool = False
    ) -> Iterator[tuple[Any, Any]]:
        """Normalised float32 batches of this part, formed on the device; deterministic for (seed, epoch, part)."""
        torch = self.torch
        steps = self.steps(epoch, shuffle, seed, part, even)
        if shuffle:
            generator = torch.Generator(device="cpu").manual_seed(seed * 100_003 + epoch + 7_919 * part[0])
            order = torch.randperm(len(self.y), generator=generator).to(self.device)
        else:
            order = torch.arange(len(self.y), device=self.device)
        for start in range(0, steps * self.batch_size, self.batch_size):
            index = order[start : start + self.batch_size]
            yield self.take(self.x, self.y, index, self.stats.mean, self.stats.std)


def batch_kernel(function: Callable[..., Any], device: Any, fuse: bool | None) -> tuple[bool, Callable[..., Any]]:
    """(fused, the callable that forms batches): ``function`` compiled into one kernel when ``fuse``, or by
    default on CUDA where Triton is usable; else ``function`` itself, run by eager kernels."""
    import torch

    fused = fuse if fuse is not None else torch.device(device).type == "cuda" and triton_available()
    return fused, torch.compile(function, fullgraph=True) if fused else function


def triton_available() -> bool:
    """Whether ``torch.compile`` can generate GPU kernels here (Triton installed and usable)."""
    try:
        from torch.utils._triton import has_triton
    except ImportError:  # a torch without the helper
        return False
    return bool(has_triton())


def free_memory(device: Any) -> int | None:
    """Free bytes on a CUDA device (``torch.cuda.mem_get_info``); ``None`` for any other device."""
    import torch

    device = torch.device(device)
    return int(torch.cuda.mem_get_info(device)[0]) if device.type == "cuda" else None


def check_fits(reader: SplitReader, needed: int, device: Any) -> None:
    """Raise :class:`DeviceMemoryError` before allocating ``needed`` bytes that ``device`` has not got free."""
    free = free_memory(device)
    if free is not None and needed > free:
        raise DeviceMemoryError(
            f"{reader.root}: the {reader.config.config}/{reader.split} split ({', '.join(reader.config.bands)}) needs "
            f"{needed / 2**30:.1f} GiB on {device}, which has {free / 2**30:.1f} GiB free: stream the batches from "
            f"the CPU instead (DeviceBatches: harness/train.py without --device-cache), choose fewer bands, or "
            f"run more processes (each holds a k-th of the split)"
        )


def host_tensor(values: np.ndarray) -> Any:
    """A batch as a torch tensor sharing its memory; uint16 as its int16 bit pattern (2 bytes a pixel, and a
    dtype that every torch device indexes and copies), which :func:`normalized` widens back exactly."""
    import torch

    return torch.from_numpy(values.view(np.int16) if values.dtype == np.uint16 else values)


class DeviceStats:
    """The reader's per-band train statistics on the device, shaped ``(bands, 1, 1)`` to broadcast over a batch:
    what :func:`normalized` takes (an int16 input is the bit pattern of uint16 values, :func:`host_tensor`, and
    ``int32 & 0xFFFF`` restores 0..65535 exactly before the arithmetic)."""

    def __init__(self, reader: SplitReader, device: Any) -> None:
        import torch

        self.mean = torch.from_numpy(reader.mean).to(device)[:, None, None]
        self.std = torch.from_numpy(reader.std).to(device)[:, None, None]


def normalized(x: Any, mean: Any, std: Any) -> Any:
    """``(x - mean) / std`` as float32; an int16 ``x`` is read as the uint16 it holds (``int32 & 0xFFFF``)."""
    import torch

    if x.dtype == torch.int16:
        x = x.to(torch.int32) & 0xFFFF
    return (x.to(torch.float32) - mean) / std


def gather_normalized(x: Any, y: Any, index: Any, mean: Any, std: Any) -> tuple[Any, Any]:
    """Rows ``index`` of a held split: inputs :func:`normalized`, targets as float32 (one kernel compiled)."""
    import torch

    return normalized(x[index], mean, std), y[index].to(torch.float32)


class DeviceBatches:
    """A split streamed from the CPU (:class:`SplitReader` with ``raw=True``: gathering only) and normalised on
    the device: for an accelerator that cannot hold the split (else :class:`DeviceCache`).  ``fuse`` as for
    :class:`DeviceCache`: one compiled kernel widens and normalises each batch (:func:`normalized`)."""

    def __init__(self, reader: SplitReader, device: Any, fuse: bool | None = None) -> None:
        if not reader.config.raw:
            raise ValueError("DeviceBatches needs a SplitReader made with LoaderConfig(raw=True)")
        self.reader, self.device, self.n_classes = reader, device, reader.n_classes
        self.stats = DeviceStats(reader, device)
        self.fused, self.widen = batch_kernel(normalized, device, fuse)

    def __len__(self) -> int:
        return len(self.reader)

    def steps(
        self, epoch: int = 0, shuffle: bool = False, seed: int = 0, part: tuple[int, int] = (0, 1), even: bool = False
    ) -> int:
        return self.reader.steps(epoch, shuffle, seed, part, even)

    def eval_rows(self, part: tuple[int, int] = (0, 1)) -> np.ndarray:
        return self.reader.eval_rows(part)

    def in_cell(self, cell: str) -> np.ndarray:
        return self.reader.in_cell(cell)

    def batches(
        self, epoch: int = 0, shuffle: bool = False, seed: int = 0, part: tuple[int, int] = (0, 1), even: bool = False
    ) -> Iterator[tuple[Any, Any]]:
        for x, y in self.reader.batches(epoch, shuffle, seed, part, even):
            inputs = host_tensor(x).to(self.device, non_blocking=True)
            normalised = self.widen(inputs, self.stats.mean, self.stats.std)
            yield normalised, host_tensor(y).to(self.device, non_blocking=True)
