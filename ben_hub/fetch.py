"""Downloading public files once into ben-hub's cache, checked before they count as cached.

A file is streamed into a temporary file beside its target, checked by the caller's ``check`` (content, not
bytes: public copies differ in line endings, columns and encoding), and only then renamed into place, so a
file under the cache is always a complete, checked download; an interrupted or rejected one leaves nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from .errors import BenHubError
from .space import is_no_space, reported_full_disk

TIMEOUT_S = 60
"""Seconds without data before a download is given up."""


def default_cache_dir() -> Path:
    """``$BEN_HUB_CACHE`` or ``~/.cache/ben-hub``."""
    return Path(os.environ.get("BEN_HUB_CACHE", Path.home() / ".cache" / "ben-hub"))


def user_agent() -> str:
    """``ben-hub/<version>``: some hosts refuse urllib's default agent."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"ben-hub/{version('ben-hub')}"
    except PackageNotFoundError:
        return "ben-hub"


def download(url: str, target: Path, check: Callable[[Path], None], error: type[BenHubError], hint: str) -> Path:
    """``url`` saved at ``target`` once ``check(temporary_path)`` returned; ``target`` if it exists already.

    Raises:
        error: when the download fails, with ``hint`` (what to do instead: where to get the file by hand and
            which option takes it); ``check``'s own error when the content is not the published one.
        DiskFullError: when the cache's filesystem is full (nothing is left in the cache).
    """
    if target.exists():
        return target
    with reported_full_disk(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        part = Path(name)
        try:
            with os.fdopen(handle, "wb") as out:
                try:
                    request = urllib.request.Request(url, headers={"User-Agent": user_agent()})
                    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                        shutil.copyfileobj(response, out, 1 << 20)
                except OSError as err:  # URLError, HTTPError, timeouts and resets are all OSErrors
                    if is_no_space(err):  # writing the cache, not the network
                        raise
                    raise error(f"could not download {url} ({err}); {hint}") from None
                out.flush()
                os.fsync(out.fileno())
            check(part)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
    return target


def prefetch(cache_dir: Path | None = None, which: tuple[str, ...] = ("lists", "reben")) -> list[tuple[str, str]]:
    """Download every public file ben-hub may need into the cache now (for machines without network later):
    the split and exclusion lists (``lists``) and reBEN's metadata pair (``reben``).  Files already cached are
    kept.  Returns ``(name, outcome)`` per file: its count and cache path, or the error; one failure does not
    stop the others."""
    from .lists import PUBLIC_LISTS, fetch_public_list
    from .reben import RECORD, fetch_metadata

    root = cache_dir or default_cache_dir()
    done: list[tuple[str, str]] = []
    if "lists" in which:
        for key, source in PUBLIC_LISTS.items():
            try:
                names = fetch_public_list(key, root)
                done.append((key, f"{len(names):,} names, verified: {root / 'lists' / source.relpath}"))
            except BenHubError as err:
                done.append((key, f"FAILED: {err}"))
    if "reben" in which:
        try:
            for path in fetch_metadata(root):
                done.append((f"reben/{path.name}", f"verified: {path}"))
        except BenHubError as err:
            done.append((f"reben ({RECORD})", f"FAILED: {err}"))
    return done
