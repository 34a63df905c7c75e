"""Public patch lists: where they live, how to verify them, and a strict reader.

The official BigEarthNet v1.0 split lists, its exclusion lists and the paper's resampled lists are public
files that ben-hub never ships.  They are read from a folder the user names (laid out like
``shared/bigearthnet/splits``) or downloaded once into a cache.  Copies online differ in line endings and
columns (the BigEarthNet-MM repositories list ``s2,s1`` pairs), so a list is verified by its *content*:
the number of names and the sha256 of the sorted, stripped S2 names joined by ``\\n``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import ListError
from .fetch import default_cache_dir, download

_TUB = "https://git.tu-berlin.de/rsim/BigEarthNet-S2_19-classes_models/-/raw/master/splits"
_BEN = "https://bigearth.net/static/documents"
_PAPER = "https://raw.githubusercontent.com/MattVerlynde/balanced-bigearthnet/main/data/resampled"
_NAME_RE = re.compile(r"^S[12][AB]_[A-Z0-9_]+$")


@dataclass(frozen=True)
class ListSource:
    """A public list file: its path inside a lists folder, its public URL and its pinned content."""

    key: str
    relpath: str
    url: str
    count: int
    content_sha256: str


PUBLIC_LISTS: dict[str, ListSource] = {
    s.key: s
    for s in (
        ListSource("original/train", "original/train.csv", f"{_TUB}/train.csv", 269_695,
                   "aa7097119a1342cb97256283090deb8a1c0f4fa7e146eadf0f25924fd2a8c622"),
        ListSource("original/validation", "original/val.csv", f"{_TUB}/val.csv", 123_723,
                   "45b61b66f88e954b9f855c3027d1365ae86da3d71d45cc61adbe7e96738699a8"),
        ListSource("original/test", "original/test.csv", f"{_TUB}/test.csv", 125_866,
                   "a276d495692b877a827fe6e1a717c923f691e95cb9d93ba858264ad92edb3f07"),
        ListSource("cloud_or_shadow", "patches_with_cloud_and_shadow.csv", f"{_BEN}/patches_with_cloud_and_shadow.csv",
                   9_280, "06860101274dbcdddcb7bb64d428dc098b2682dae0a2bb68a59c6586238ce3bb"),
        ListSource("seasonal_snow", "patches_with_seasonal_snow.csv", f"{_BEN}/patches_with_seasonal_snow.csv",
                   61_707, "99d47d60da4d8f3a58b11eb00112774dbb36d70ddc409371eded238f47bf66b8"),
        ListSource("resampled-paper/train", "resampled-paper/train.csv", f"{_PAPER}/train.csv", 311_537,
                   "6be590bcfa1c1c8a11a14da73134b0ac14471d5896056bb3c45b03ea389d64e3"),
        ListSource("resampled-paper/validation", "resampled-paper/val.csv", f"{_PAPER}/val.csv", 103_962,
                   "220cf92167580dbc066c33ef3d7e6249915a8c9391cd74acb545a77df6d0cb6d"),
        ListSource("resampled-paper/test", "resampled-paper/test.csv", f"{_PAPER}/test.csv", 103_785,
                   "e88c2b1e609c24613dc75eec0e009343f46f50df122bfc0bc34a974798fce748"),
    )
}  # fmt: skip
SPLIT_FILES = {"train": "train.csv", "validation": "val.csv", "test": "test.csv"}


def parse_list(text: str, origin: str) -> list[str]:
    """Patch names of a list file's text: BOM, CRLF, blank lines and ``s2,s1`` pairs are tolerated.

    Raises:
        ListError: naming ``origin`` and the line, for a line that is not a BigEarthNet patch name, or a
            name listed twice.
    """
    names: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        name = line.strip().split(",")[0].strip()
        if not name:
            continue
        if not _NAME_RE.match(name):
            raise ListError(
                f"{origin}, line {number}: {name[:60]!r} is not a BigEarthNet patch name; fix or remove the line"
            )
        if name in seen:
            raise ListError(f"{origin}, line {number}: {name} is listed twice; remove the duplicate")
        seen.add(name)
        names.append(name)
    return names


def read_list(path: Path) -> list[str]:
    """Read one list file (see :func:`parse_list`)."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ListError(f"list file {path} does not exist; check --lists-dir") from None
    except UnicodeDecodeError as err:
        raise ListError(f"list file {path} is not UTF-8 text ({err}); re-download it") from None
    return parse_list(text, str(path))


def content_digest(names: Iterable[str]) -> str:
    """sha256 of the sorted names joined by newlines: equal for copies that differ only in layout."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def fetch_public_list(key: str, cache_dir: Path | None = None) -> list[str]:
    """A public list by key, downloaded once into the cache (``lists/``) and verified by content."""
    source = PUBLIC_LISTS[key]
    target = (cache_dir or default_cache_dir()) / "lists" / source.relpath

    def check(path: Path) -> None:
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ListError(f"{source.url} is not UTF-8 text ({err}); is the address still the list?") from None
        verify_list(source, parse_list(text, source.url), source.url)

    hint = f"download it by hand as FOLDER/{source.relpath} and pass --lists-dir FOLDER"
    names = read_list(download(source.url, target, check, ListError, hint))
    verify_list(source, names, str(target))
    return names


def verify_list(source: ListSource, names: list[str], origin: str) -> None:
    """Raise :class:`ListError` unless ``names`` is the pinned content of ``source``."""
    if len(names) != source.count or content_digest(names) != source.content_sha256:
        raise ListError(
            f"{origin} holds {len(names)} names that differ from the published {source.key} list "
            f"({source.count} names); delete it and download it again"
        )


def load_lists(keys: Iterable[str], lists_dir: Path | None, cache_dir: Path | None = None) -> dict[str, list[str]]:
    """Lists by key: from ``lists_dir`` when given (read as is, not pinned), else fetched and verified.

    A lists folder may hold the published lists or a synthetic archive's own; missing optional files
    (exclusion lists) read as empty only when the folder is given and the file is absent.
    """
    out: dict[str, list[str]] = {}
    for key in keys:
        if lists_dir is None:
            out[key] = fetch_public_list(key, cache_dir)
            continue
        path = lists_dir / PUBLIC_LISTS[key].relpath
        if not path.exists() and key in ("cloud_or_shadow", "seasonal_snow"):
            out[key] = []
            continue
        out[key] = read_list(path)
    return out
