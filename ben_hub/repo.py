"""The repository a build produces: layout, configurations, manifest, README.

::

    <repo>/
      README.md                   dataset card: YAML configs + dataset_info, then the body (cards/)
      manifest.json               every shard: path, cell, rows, bytes, sha256; split sizes per config
      skipped.json                every patch left out, with the reason (empty list when none)
      build.json                  the settings of the build
      data/<orig>-<resampled>/part-*.parquet      one folder per (official split, resampled split) cell
      data/excluded/part-*.parquet                patches outside the official set

Each patch is stored once; a configuration's split is a glob over cells: ``original`` train is
``data/train-*/*.parquet``, ``resampled`` train is ``data/*-train/*.parquet``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
import jinja2
import numpy as np
import pyarrow as pa
import yaml

from .bands import bands_for
from .labels import LABELS_19, LABELS_43
from .shards import write_json_atomic, write_text_atomic
from .splits import SPLITS

if TYPE_CHECKING:
    from .build import BuildConfig

CARDS_DIR = Path(__file__).resolve().parent.parent / "cards"
CONFIGS: dict[str, dict[str, str]] = {
    "original": {s: f"data/{s}-*/*.parquet" for s in SPLITS},
    "resampled": {s: f"data/*-{s}/*.parquet" for s in SPLITS},
    "excluded": {"excluded": "data/excluded/*.parquet"},
}
DEFAULT_CONFIG = "resampled"


def cell_of(relpath: str) -> str:
    """``data/train-test/part-00000-of-00001.parquet`` -> ``train-test``."""
    return relpath.split("/")[1]


def cell_in_split(cell: str, config: str, split: str) -> bool:
    """Whether a cell's shards belong to ``split`` of ``config`` (mirrors the globs of :data:`CONFIGS`)."""
    if config == "excluded":
        return cell == "excluded"
    if cell == "excluded":
        return False
    original, resampled = cell.split("-")
    return (original if config == "original" else resampled) == split


def split_sizes(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, int]]]:
    """Rows and bytes of every (config, split) from the shard records."""
    sizes: dict[str, dict[str, dict[str, int]]] = {}
    for config, split_globs in CONFIGS.items():
        for split in split_globs:
            chosen = [r for r in records if cell_in_split(cell_of(r["path"]), config, split)]
            if chosen:
                sizes.setdefault(config, {})[split] = {
                    "num_examples": sum(r["rows"] for r in chosen),
                    "num_bytes": sum(r["bytes"] for r in chosen),
                }
    return sizes


def yaml_header(feats: datasets.Features, sizes: dict[str, dict[str, dict[str, int]]]) -> dict[str, Any]:
    """The card's YAML: ``configs`` with ``data_files`` globs and ``dataset_info`` with features and sizes."""
    configs, infos = [], []
    feature_yaml = datasets.DatasetInfo(features=feats)._to_yaml_dict()["features"]
    for config, split_sizes_ in sizes.items():
        entry: dict[str, Any] = {"config_name": config}
        if config == DEFAULT_CONFIG:
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": CONFIGS[config][s]} for s in split_sizes_]
        configs.append(entry)
        total = sum(v["num_bytes"] for v in split_sizes_.values())
        infos.append(
            {
                "config_name": config,
                "features": feature_yaml,
                "splits": [{"name": s, **v} for s, v in split_sizes_.items()],
                "download_size": total,
                "dataset_size": total,
            }
        )
    return {"configs": configs, "dataset_info": infos}


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated blocks (each config's features) in full: no ``&id001`` anchors in the card."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_readme(header: dict[str, Any], context: dict[str, Any]) -> str:
    """README.md = YAML front matter + the body rendered from ``cards/dataset_card.md.j2``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(CARDS_DIR),
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    body = env.get_template("dataset_card.md.j2").render(**context)
    front = yaml.dump(header, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{front}---\n\n{body}"


def card_context(config: BuildConfig, sizes: dict, skipped: list[dict]) -> dict[str, Any]:
    layout = config.spec.layout
    return {
        "layout": layout, "with_s1": config.spec.with_s1, "method": config.method, "seed": config.seed,
        "ratios": config.ratios, "sizes": sizes, "bands": bands_for(config.spec.with_s1),
        "labels_43": LABELS_43 if layout == "v1" else (), "labels_19": LABELS_19, "n_skipped": len(skipped),
    }  # fmt: skip


def manifest(records: list[dict[str, Any]], sizes: dict, n_index: int, cells: np.ndarray) -> dict[str, Any]:
    shards = [
        {k: r[k] for k in ("path", "rows", "bytes", "sha256")} | {"cell": cell_of(r["path"])}
        for r in sorted(records, key=lambda r: r["path"])
    ]
    return {
        "format": "ben-hub/1",
        "patches_scanned": n_index,
        "rows": sum(r["rows"] for r in records),
        "splits": sizes,
        "shards": shards,
    }


def finalize(
    out: Path,
    config: BuildConfig,
    feats: datasets.Features,
    index: pa.Table,
    cells: np.ndarray,
    records: list[dict[str, Any]],
    scan_problems: list[dict[str, str]],
) -> dict[str, Any]:
    """Write ``manifest.json``, ``skipped.json``, ``build.json`` and ``README.md`` (deterministic bytes)."""
    skipped = sorted(scan_problems + [s for r in records for s in r["skipped"]], key=lambda s: s["patch_id"])
    sizes = split_sizes(records)
    result = manifest(records, sizes, index.num_rows, cells)
    write_json_atomic(out / "skipped.json", skipped)
    write_json_atomic(out / "build.json", config.identity())
    write_json_atomic(out / "manifest.json", result)
    write_text_atomic(out / "README.md", render_readme(yaml_header(feats, sizes), card_context(config, sizes, skipped)))
    return result


def load_manifest(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text())
