"""A tarball's label scan, kept for the runs after it in ``OUT/.ben-hub/labels``.

A v1 S2 tarball holds its labels in JSON files among its 7.7 million members, so a build from it first reads the
whole download through for them (inflating all of it), then reads it again for the pixels.  A build stopped after
its label scan (killed, a full disk, a cluster job) and run again takes the scan from here instead of reading the
tarball twice more: the index table (Arrow IPC, memory-mapped) and the problems it met (``--skip-bad``), kept under
a key of the tarball's name, size and modification time, the layout, ``--skip-bad``, the index's columns and
ben-hub's version.  A download replaced since has another key and is scanned again.  An unpacked folder is always
scanned again: it is read faster, and its JSON files may have been corrected since.  The build deletes the folder
once the repository is finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..shards import atomic_path, write_json_atomic
from . import ArchiveSpec
from .base import INDEX_COLUMNS
from .tar import is_tar


def scan_key(spec: ArchiveSpec, skip_bad: bool) -> str:
    """What the cached scan depends on: the tarball as a file (name, size, modification time), layout, skip_bad,
    and the index's columns and ben-hub's version (a ben-hub upgraded between two runs scans again)."""
    from .. import __version__

    status = spec.s2.stat()
    columns = str(pa.schema(INDEX_COLUMNS))
    identity = [spec.layout, spec.s2.name, status.st_size, status.st_mtime_ns, skip_bad, columns, __version__]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]


def write_table(path: Path, table: pa.Table) -> None:
    with atomic_path(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def read_table(path: Path) -> pa.Table:
    return pa.ipc.open_file(pa.memory_map(str(path))).read_all()


def cached_scan(
    folder: Path | None,
    spec: ArchiveSpec,
    skip_bad: bool,
    problems: list[dict[str, Any]],
    scan: Callable[[], pa.Table],
) -> pa.Table:
    """``scan()`` of a tarball, or the table an earlier run kept in ``folder`` (its problems added to ``problems``);
    a folder archive, or ``folder=None``, is scanned each time.  Each file is written atomically: the table first,
    its problems last, so a table is used only with its problems beside it."""
    if folder is None or not is_tar(spec.s2):
        return scan()
    key = scan_key(spec, skip_bad)
    table_path, problems_path = folder / f"{key}.arrow", folder / f"{key}.json"
    if table_path.is_file() and problems_path.is_file():
        problems.extend(json.loads(problems_path.read_text()))
        return read_table(table_path)
    before = len(problems)
    table = scan()
    for old in folder.glob("*") if folder.is_dir() else ():  # another download's scan: not needed any more
        if not old.name.startswith(key):
            old.unlink(missing_ok=True)
    write_table(table_path, table)
    write_json_atomic(problems_path, problems[before:])
    return table


def release(folder: Path) -> None:
    """Delete the kept scans (once the repository they fed is finished)."""
    shutil.rmtree(folder, ignore_errors=True)
