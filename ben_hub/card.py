"""The dataset card: rendered from the repository's own files (manifest, build settings, statistics).

``README.md`` = YAML front matter (Hub metadata, ``configs`` with ``data_files``, ``dataset_info``) + the body
from ``cards/dataset_card.md.j2``.  Nothing in it is typed by hand, so ``verify`` can re-render it and
compare; ``label_counts.png`` is the paper's Fig. 4 drawn from the same statistics, ``examples.png`` a few of the
patches themselves (:mod:`ben_hub.gallery`).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path
from typing import Any

import jinja2
import yaml

from . import __version__, schema
from .archive.base import FLAG_COLUMNS
from .bands import bands_for
from .labels import ACRONYMS, LAYOUT_CLASSES, NOMENCLATURES
from .repo import SHARED_TEST, SHARED_VALIDATION, in_config_order, load_json, load_manifest, yaml_header
from .shards import write_text_atomic
from .space import reported_full_disk
from .splits import SPLITS
from .splits.quality import (
    PLACES,
    country_gap_text,
    country_table,
    nearby_text,
    overlap_table,
    plot,
    touching_text,
)

CARDS_DIR = next(
    (d for d in (Path(__file__).resolve().parent.parent / "cards", Path(sys.prefix) / "share" / "ben-hub" / "cards")
     if (d / "dataset_card.md.j2").is_file()),
    Path(__file__).resolve().parent.parent / "cards",
)  # fmt: skip
"""The templates: ``cards/`` of the source tree (editable installs), else the installed data files."""
EXAMPLES_PNG = "examples.png"
"""One true-colour training patch per frequent label (:mod:`ben_hub.gallery`), shown near the card's top."""
DEFAULT_REPO_ID = "balanced-bigearthnet"
"""Name used in the card's loading snippets until ``push`` renders it with the real repository id."""
TAGS = ["remote-sensing", "earth-observation", "sentinel-2", "sentinel-1", "multispectral", "bigearthnet"]
_SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                    (10_000_000, "1M<n<10M")]  # fmt: skip


class _NoAliasDumper(yaml.SafeDumper):
    """Writes repeated blocks (each config's features) in full: no ``&id001`` anchors in the card."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def size_category(rows: int) -> str:
    return next((name for limit, name in _SIZE_CATEGORIES if rows < limit), "n>10M")


def hub_metadata(identity: dict[str, Any], rows: int) -> dict[str, Any]:
    version = "v1.0" if identity["layout"] == "v1" else "reBEN v2.0"
    return {
        "pretty_name": f"Balanced BigEarthNet ({version})",
        "license": "cdla-permissive-1.0",
        "task_categories": ["image-classification"],
        "task_ids": ["multi-label-image-classification"],
        "size_categories": [size_category(rows)],
        "tags": TAGS if identity["with_s1"] else [t for t in TAGS if t != "sentinel-1"],
    }


def label_tables(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One table per nomenclature: id, acronym, class, then ``count (share)`` per config split."""
    columns = [(c, s) for c, splits in stats["configs"].items() for s in splits]
    tables = []
    for column, n in (("labels", 43), ("labels_19", 19)):
        if column not in stats["configs"]["original"]["train"]["labels"]:
            continue
        rows = []
        for i, name in enumerate(NOMENCLATURES[n]):
            cells = []
            for config, split in columns:
                entry = stats["configs"][config][split]
                count = entry["labels"][column][i]
                cells.append(f"{count:,} ({count / entry['rows']:.2%})" if entry["rows"] else "0")
            rows.append({"id": i, "acronym": ACRONYMS[n][i], "name": name, "cells": cells})
        title = f"`{column}`: {n} classes" + (" (BigEarthNet-19 nomenclature)" if n == 19 else " (CLC level 3)")
        tables.append({"title": title, "columns": [c if c == s else f"{c} {s}" for c, s in columns], "rows": rows})
    return tables


def card_context(root: Path, repo_id: str) -> dict[str, Any]:
    identity, stats = load_json(root, "build.json"), load_json(root, "stats.json")
    manifest, skipped = load_manifest(root), load_json(root, "skipped.json")
    stats["configs"] = in_config_order(stats["configs"])
    manifest["splits"] = in_config_order(manifest["splits"])
    configs = stats["configs"]
    excluded = configs.get("excluded", {}).get("excluded", {"rows": 0, "flags": {}})
    official = stats["configs"]["original"]
    return {
        "pretty_name": hub_metadata(identity, manifest["rows"])["pretty_name"], "repo_id": repo_id,
        "layout": identity["layout"], "with_s1": identity["with_s1"], "method": identity["method"],
        "seed": identity["seed"], "block": identity.get("block"), "lists": identity.get("resampled_lists"),
        "ratio_text": ratio_text(identity, manifest),
        "n_classes": identity.get("classes") or LAYOUT_CLASSES[identity["layout"]], "sizes": manifest["splits"],
        "n_skipped": len(skipped), "absent": manifest.get("absent_from_archive"),
        "excluded_rows": excluded["rows"], "bands": bands_for(identity["with_s1"]),
        "has_43": identity["layout"] == "v1", "stats": stats, "label_tables": label_tables(stats),
        "cardinality_columns": list(official["train"]["cardinality"]),
        "excluded_flags": {f: excluded["flags"].get(f, 0) for f in FLAG_COLUMNS},
        "official_flags": {f: sum(official[s]["flags"][f] for s in official) for f in FLAG_COLUMNS},
        "band_configs": [c for c in ("original", "resampled") if c in stats["band_stats"]],
        "leaderboard": leaderboard_markdown(root), "examples": (root / EXAMPLES_PNG).is_file(),
        "unmeasured": unmeasured(stats), "spatial": spatial_text(stats), "countries": countries_text(stats),
        "overlap": overlap_text(manifest, repo_id),
    }  # fmt: skip


def ratio_text(identity: dict[str, Any], manifest: dict[str, Any]) -> str:
    """The ``resampled`` split's shares as the card gives them (``60/20/20``): the target ratios, but for ``lists``,
    whose sizes the lists decide and not ``--ratios``, the shares of the patches the lists gave each split (the
    paper's: 311,537 / 103,962 / 103,785, so 60/20/20)."""
    sizes = [manifest["splits"].get("resampled", {}).get(s, {}).get("num_examples", 0) for s in SPLITS]
    shares = [n / sum(sizes) for n in sizes] if identity["method"] == "lists" and sum(sizes) else identity["ratios"]
    return "/".join(f"{share * 100:.0f}" for share in shares)


def overlap_text(manifest: dict[str, Any], repo_id: str) -> str | None:
    """The card's table of the configurations' overlap: patches per cell (``original`` split x ``resampled`` split,
    from ``manifest.json``'s shards) with the totals, what the shared test and validation cells are for and how to
    load the shared test patches alone; ``None`` when no patch is in either configuration."""
    cells: dict[str, int] = {}
    for shard in manifest["shards"]:
        cells[shard["cell"]] = cells.get(shard["cell"], 0) + shard["rows"]
    grid = [[cells.get(f"{o}-{r}", 0) for r in SPLITS] for o in SPLITS]
    if not any(map(any, grid)):
        return None
    lines = overlap_table(grid, list(SPLITS), "`original` \\ `resampled`")
    test, validation = cells.get(SHARED_TEST, 0), cells.get(SHARED_VALIDATION, 0)
    shared = (
        f"The {test:,} {'patch' if test == 1 else 'patches'} of `{SHARED_TEST}` are in both configurations' test "
        "split: a model of either configuration never trains or chooses its epoch on them, so ben-hub's benchmark "
        "harness scores models of both configurations there on the same patches (and their validation loss on the "
        f"{validation:,} of `{SHARED_VALIDATION}`). To load them alone (the features from this card; no other shard "
        "read):\n\n```python\nfrom datasets import load_dataset, load_dataset_builder\n\n"
        f'features = load_dataset_builder("{repo_id}", "resampled").info.features\n'
        f'shared = load_dataset("{repo_id}", data_files={{"test": "data/{SHARED_TEST}/*.parquet"}}, split="test", '
        "features=features)\n```"
        if test
        else "No patch is in both configurations' test split: their models cannot be scored on the same patches."
    )
    return (
        "Each patch is stored once, in the cell of its `original` split and its `resampled` split "
        "(`data/<original>-<resampled>/`); patches per cell:\n\n" + "\n".join(lines) + f"\n\n{shared}\n"
    )


def countries_text(stats: dict[str, Any]) -> str | None:
    """The card's country table (``stats.json``'s ``countries``): each country's patches and their share in each
    split of both configurations (an empty split too: its shares are 0), the split sizes' own shares first, then per
    configuration the country farthest from them (:func:`ben_hub.splits.quality.country_gap`); ``None`` without."""
    found = stats.get("countries")
    if not found:
        return None
    configs = [c for c in ("original", "resampled") if c in found]
    sizes = {c: {s: stats["configs"][c].get(s, {}).get("rows", 0) for s in SPLITS} for c in configs}
    lines = country_table(sizes, {c: found[c] for c in configs})
    farthest = "; ".join(country_gap_text({"sizes": sizes[c], "countries": found[c]}, f"`{c}` ") for c in configs)
    return (
        f"Each country's patches and their share per split; the country farthest from the split sizes: {farthest}.\n\n"
        + "\n".join(lines)
        + "\n"
    )


def spatial_text(stats: dict[str, Any]) -> str | None:
    """The card's sentences on spatial leakage (``stats.json``'s ``spatial``, from names, and ``nearby``, from
    coordinates) for the configurations whose splits all hold patches, ``None`` for a build without either."""
    found, near = stats.get("spatial"), stats.get("nearby")
    sentences = []
    if found and (shares := configuration_shares(found["touching"], stats)):
        sentences.append(f"Patches next to a patch of another split{PLACES[found['place']]}: {shares}.")
    if near and (shares := configuration_shares(near["touching"], stats)):
        sentences.append(f"{nearby_text(near['reach_m'])}: {shares}.")
    return " ".join(sentences) or None


def configuration_shares(touching: dict[str, dict[str, float]], stats: dict[str, Any]) -> str:
    """```original`` train 6.4%, ...; ``resampled`` ...`` (markdown) for the configurations whose splits all hold
    patches; empty when none does."""
    measured = {c: per_split for c, per_split in touching.items() if c not in unmeasured(stats)}
    return "; ".join(f"`{config}` {touching_text({s: per_split[s] for s in SPLITS})}"
                     for config, per_split in measured.items())  # fmt: skip


def unmeasured(stats: dict[str, Any]) -> dict[str, str]:
    """Per configuration without split quality (a split with no patch: a build of a few patches), those splits,
    as ``validation and test``."""
    empty = {c: [s for s in SPLITS if not stats["configs"].get(c, {}).get(s, {}).get("rows")]
             for c in ("original", "resampled") if c not in stats["quality"]}  # fmt: skip
    return {c: " and ".join(splits) for c, splits in empty.items() if splits}


def leaderboard_markdown(root: Path) -> str | None:
    """The Table 1 section, when ``ben-hub leaderboard --repo`` has put ``leaderboard.json`` in the repository."""
    if not (root / "leaderboard.json").exists():
        return None
    from .leaderboard import PICTURES, markdown

    text = markdown(load_json(root, "leaderboard.json"))
    return text + "".join(f"\n![{caption}]({name})\n" for name, caption in PICTURES.items() if (root / name).exists())


def card_repo_id(text: str) -> str | None:
    """The repository id the card was rendered for (its loading snippet names it)."""
    match = re.search(r'load_dataset\("([^"]+)", "resampled"\)', text)
    return match.group(1) if match else None


def card_stamp() -> str:
    """The last line of every card: the ben-hub version and a digest of the card template and of the modules that
    word it (this one, the split-quality texts and the leaderboard's tables) (an HTML comment, not shown).

    ``verify`` compares a card with a fresh rendering only when its stamp is this one: another version, template or
    renderer may word the same data otherwise."""
    here = Path(__file__).resolve().parent
    renderers = (Path(__file__), here / "splits" / "quality.py", here / "leaderboard.py")
    sources = (CARDS_DIR / "dataset_card.md.j2").read_bytes() + b"".join(path.read_bytes() for path in renderers)
    digest = hashlib.sha256(sources).hexdigest()[:16]
    return f"<!-- rendered by ben-hub {__version__} from card template {digest} -->"


def stamp_of(text: str) -> str | None:
    """The stamp a card ends with (:func:`card_stamp`), or ``None`` (rendered before cards had one)."""
    match = re.search(r"<!-- rendered by ben-hub .* from card template [0-9a-f]+ -->\s*\Z", text)
    return match.group(0).rstrip() if match else None


def render_card(root: Path, repo_id: str | None = None) -> str:
    """The full ``README.md`` text of a finished repository (deterministic), ending in :func:`card_stamp`."""
    identity, manifest = load_json(root, "build.json"), load_manifest(root)
    feats = schema.features(identity["layout"], identity["with_s1"])
    header = hub_metadata(identity, manifest["rows"]) | yaml_header(feats, manifest["splits"])
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(CARDS_DIR),
        autoescape=False,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    body = env.get_template("dataset_card.md.j2").render(**card_context(root, repo_id or DEFAULT_REPO_ID))
    front = yaml.dump(header, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True, width=120)
    return f"---\n{front}---\n\n{body.rstrip()}\n\n{card_stamp()}\n"


def plot_label_counts(root: Path) -> None:
    """``label_counts.png``: per-label patches per split, original vs resampled (the paper's Fig. 4)."""
    stats = load_json(root, "stats.json")
    reports = {c: stats["quality"][c] for c in ("original", "resampled") if c in stats["quality"]}
    if reports:
        n = len(next(iter(reports.values()))["per_label"])
        plot(reports, str(root / "label_counts.png"), "Patches per label and split", ACRONYMS[n])


def write_card(root: Path, repo_id: str | None = None) -> None:
    """Draw the plots (label counts, example patches) and (re)write ``README.md`` atomically."""
    from .gallery import plot_examples
    from .mirror import refuse_mirror

    refuse_mirror(root, "render the card of the build it came from")
    with reported_full_disk(root):
        plot_label_counts(root)
        plot_examples(root, root / EXAMPLES_PNG)
        write_text_atomic(root / "README.md", render_card(root, repo_id))
