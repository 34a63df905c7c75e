"""Disk space: a full disk reported as what to free and how to go on, and warned of before it happens.

A v1 build from the downloads writes the repository (its S2 bands alone 118.2 KB per real patch,
``bench/scale.py``: about 70 GB for the 590,326 patches; S1 adds to it) and, while it runs, the S1 staging
(about as large as the unpacked S1 files, about 68 GB).  Running out of space part of the way through loses
nothing (every file is written atomically and a rerun resumes), but it wastes the time until then.  So long
writes project their final size from what they wrote so far and warn once, early, when the filesystem's free
space is smaller (``ben_hub`` logger); and a write that fails with ``ENOSPC`` or ``EDQUOT`` becomes a
:class:`~ben_hub.errors.DiskFullError` naming the folder and its free space.
"""

from __future__ import annotations

import errno
import logging
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import DiskFullError

LOG = logging.getLogger("ben_hub")
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
NO_SPACE_TEXT = ("No space left on device", "Disk quota exceeded")
"""How pyarrow's C++ writer reports them: an ``OSError`` without ``errno``."""
MIN_FRACTION = 0.02
"""A projection waits until this share of the work is done (real patches are alike; the first few are not
all of the archive's)."""


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return shutil.disk_usage(Path.cwd()).free


def size_text(n: float) -> str:
    """``n`` bytes in decimal units, as disk sizes are sold: ``68.0 GB``, ``512.0 MB``."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def is_no_space(err: OSError) -> bool:
    return err.errno in NO_SPACE or any(text in str(err) for text in NO_SPACE_TEXT)


@contextmanager
def reported_full_disk(folder: Path, then: str = "run the same command again") -> Iterator[None]:
    """Turn a full disk or quota met while writing under ``folder`` into a :class:`DiskFullError` saying what
    was written, how much is free, and ``then`` (how to go on: rerun, which resumes)."""
    try:
        yield
    except OSError as err:
        if not is_no_space(err):
            raise
        where = f" writing {err.filename}" if err.filename else ""
        raise DiskFullError(
            f"no space left on the device{where} (with the files cut short deleted, the filesystem of {folder} "
            f"has {size_text(free_bytes(folder))} free); free some space there and {then}"
        ) from None


@dataclass
class SpaceWatch:
    """Warns once when ``what``'s bytes written so far, scaled to all of the work, outgrow the free space.

    ``check(done, written)``: ``done`` is the share of the work finished (0-1), ``written`` the bytes it wrote
    so far; what remains is projected as ``written * (1 - done) / done`` and compared with the free space of
    ``folder``'s filesystem, at most once every ``every_s`` seconds.  Returns the projected remaining bytes, or
    ``None`` when it did not look (before ``MIN_FRACTION``, or too soon after the last look).
    """

    folder: Path
    what: str
    every_s: float = 1.0
    """Seconds between looks at the free space (each costs a ``statvfs``; the staging calls once a patch)."""
    warned: bool = False
    last: float = -math.inf

    def check(self, done: float, written: int) -> int | None:
        now = time.monotonic()
        if done < MIN_FRACTION or written <= 0 or now - self.last < self.every_s:
            return None
        self.last = now
        remaining = int(written * (1 - done) / done)
        free = free_bytes(self.folder)
        if remaining > free and not self.warned:
            self.warned = True
            LOG.warning(
                "%s needs about %s more at this rate (%s written for %.0f%% of it), and the filesystem of %s has "
                "%s free: free some space now, or stop (Ctrl-C), free it and run the same command again, which "
                "resumes",
                self.what, size_text(remaining), size_text(written), 100 * done, self.folder, size_text(free),
            )  # fmt: skip
        return remaining
