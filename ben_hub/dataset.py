"""One patch at a time, by index: a map-style dataset for ``torch.utils.data.DataLoader`` and torchgeo-style code.

    from ben_hub.dataset import PatchDataset
    ds = PatchDataset("balanced-bigearthnet", "train", LoaderConfig(config="resampled"))
    ds[0]   # {"image": float32 (3, 120, 120), normalised with the train statistics, "label": float32 (43,)}
    loader = torch.utils.data.DataLoader(ds, batch_size=256, shuffle=True, num_workers=4)

The split's chosen bands are decoded once into the loader's cache (``LoaderConfig.cache_dir``, by default
``$BEN_HUB_CACHE/decoded``: uint16 ``.npy`` files, about 86 KB per RGB patch) and every item is read from its
memory map, so random access costs one small copy and no parquet decoding.  The dataset pickles without its
maps, so each DataLoader worker opens its own.  Needs torch (``pip install 'ben-hub[train]'``).  For whole
batches without per-item work use :class:`ben_hub.loader.SplitReader`, which is faster (BENCHMARKS.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch.utils.data

from .fetch import default_cache_dir
from .loader import LoaderConfig, SplitReader


class PatchDataset(torch.utils.data.Dataset[dict[str, Any]]):
    """``dataset[i]``: ``{"image": float32 (bands, size, size), "label": float32 multi-hot (classes,)}``, rows in
    file order; ``transform`` (if given) is applied to that dict (a torchvision/torchgeo-style callable).

    ``config.normalize=False`` gives the stored values (uint16 for S2 bands) instead of the normalised ones.
    """

    def __init__(
        self,
        repo: str | Path,
        split: str,
        config: LoaderConfig | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        config = config or LoaderConfig()
        if config.cache_dir is None:
            config = dataclasses.replace(config, cache_dir=str(default_cache_dir() / "decoded"))
        reader = SplitReader(repo, split, config)  # a Hub id: this split's shards only are downloaded
        reader.cached()  # decode once (atomically; a later dataset on the same split reuses it)
        self.paths = reader.cache_paths()
        self.rows, self.n_classes, self.bands = reader.rows, reader.n_classes, config.bands
        self.normalize, self.transform = config.normalize, transform
        self.scale, self.shift = reader.scale, reader.shift
        reader.close()
        self.maps: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.rows <= index < self.rows:
            raise IndexError(f"index {index} out of range for a split of {self.rows} patches")
        if self.maps is None:  # opened on first use, in each worker process
            self.maps = (np.load(self.paths[0], mmap_mode="r"), np.load(self.paths[1], mmap_mode="r"))
        x, y = self.maps
        image = np.array(x[index])  # a copy out of the map
        if self.normalize:
            image = image * self.scale + self.shift  # uint16 times float32: float32
        item = {"image": image, "label": y[index].astype(np.float32)}
        return self.transform(item) if self.transform else item

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "maps": None}  # memory maps are reopened by each worker
