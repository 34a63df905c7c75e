"""reBEN's (BigEarthNet v2.0) published metadata: where it lives, its pinned content, and fetching it.

The BigEarthNet v2.0 release (Zenodo record 10891137, beside the archives) publishes ``metadata.parquet``
(480,038 patches: 19-class labels, official split, country, S1 name, v1 name, snow and cloud flags) and
``metadata_for_patches_with_snow_cloud_or_shadow.parquet`` (the other 69,450).  ben-hub reads them from the
archive folder or ``--metadata`` as they are; otherwise (a reBEN folder or tarball without them, ``ben-hub split
reben``, ``--countries reben``) it downloads them once into ``<cache>/reben/``.  A download is verified by
content, not bytes: its row count and the sha256 of the values ben-hub reads (:data:`ben_hub.archive.v2.COLUMNS`,
rows sorted by patch id, each label list sorted), so a copy written by another parquet writer, with more
columns or its rows in another order passes, and one with any other label, split, country, name or flag fails.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .archive.v2 import COLUMNS, EXTRA_NAME
from .errors import ArchiveError
from .fetch import default_cache_dir, download

RECORD = "https://zenodo.org/records/10891137/files"
"""BigEarthNet v2.0 (reBEN) on Zenodo: the archives and their metadata."""
PUBLISHED = "reben"
"""The word that stands for the published metadata where a path is expected (``split reben``, ``--countries``)."""


@dataclass(frozen=True)
class MetadataSource:
    """One published metadata file: its name, public URL and pinned content."""

    filename: str
    url: str
    rows: int
    content_sha256: str


METADATA = MetadataSource("metadata.parquet", f"{RECORD}/metadata.parquet?download=1", 480_038,
                          "b1b953f632073ea646fe997ab2b6a8aa037e6d27cf9a8e440d900b462ae988db")  # fmt: skip
SNOW_CLOUD = MetadataSource(EXTRA_NAME, f"{RECORD}/{EXTRA_NAME}?download=1", 69_450,
                            "77e2a2bb608230a3c7d6372c0e59aa1aac2b8b29264a3d8f36883a632b9e8997")  # fmt: skip
SOURCES = (METADATA, SNOW_CLOUD)


def content_digest(table: pa.Table) -> str:
    """sha256 of ``table``'s :data:`COLUMNS`: one line a patch (sorted by patch id), tab-separated values, label
    lists sorted and joined by ``;``, flags ``0``/``1``, nulls empty."""
    table = table.select(list(COLUMNS)).sort_by("patch_id")
    columns = [table.column(name).to_pylist() for name in COLUMNS]
    digest = hashlib.sha256()
    for start in range(0, table.num_rows, 50_000):
        rows = zip(*(c[start : start + 50_000] for c in columns), strict=True)
        digest.update("".join("\t".join(_text(v) for v in row) + "\n" for row in rows).encode())
    return digest.hexdigest()


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ";".join(sorted(value))
    return str(value)


def verify_metadata(path: Path, source: MetadataSource, origin: str) -> None:
    """Raise :class:`ArchiveError` unless ``path`` holds the published content of ``source``."""
    try:
        table = pq.read_table(path, columns=list(COLUMNS))
    except (OSError, ValueError, KeyError, pa.ArrowInvalid) as err:
        raise ArchiveError(
            f"{origin} is not reBEN's {source.filename} ({err}); is the address still the file?"
        ) from None
    if table.num_rows != source.rows or content_digest(table) != source.content_sha256:
        raise ArchiveError(
            f"{origin} holds {table.num_rows:,} patches that differ from the published {source.filename} "
            f"({source.rows:,} patches); download it from {RECORD.rsplit('/', 1)[0]} and pass it with --metadata"
        )


def fetch_metadata(cache_dir: Path | None = None) -> tuple[Path, Path]:
    """Paths of the published ``metadata.parquet`` and its snow/cloud companion, side by side, downloaded
    into ``<cache>/reben/`` the first time and verified by content (3.6 and 0.7 MB)."""
    root = (cache_dir or default_cache_dir()) / "reben"
    hint = (
        f"download it from the BigEarthNet v2.0 release ({RECORD.rsplit('/', 1)[0]}) and pass it with --metadata "
        "(or put it beside BigEarthNet-S2/)"
    )
    paths = [download(s.url, root / s.filename, partial(verify_metadata, source=s, origin=s.url), ArchiveError, hint)
             for s in SOURCES]  # fmt: skip
    return paths[0], paths[1]


def is_published(path: Path | str | None) -> bool:
    """Whether ``path`` is the word :data:`PUBLISHED` (and no such file or folder exists here)."""
    return path is not None and str(path) == PUBLISHED and not Path(path).exists()


def metadata_path(path: Path) -> Path:
    """``path`` itself, or for :data:`PUBLISHED` the fetched ``metadata.parquet`` (companion beside it)."""
    return fetch_metadata()[0] if is_published(path) else path
