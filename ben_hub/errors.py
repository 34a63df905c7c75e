"""The ben-hub error hierarchy.

Every error names what was wrong (the patch, the file) and what to do about it.  The library raises
these; only :mod:`ben_hub.cli` converts them into Click errors.
"""

from __future__ import annotations


class BenHubError(Exception):
    """Base class: something the user can fix; the message says how."""


class ArchiveError(BenHubError):
    """The raw archive is not laid out as expected (missing folder, unknown layout)."""


class PatchError(BenHubError):
    """One patch is unreadable or inconsistent (missing band, corrupt tif, bad JSON, bad label).

    Attributes:
        patch_id: the patch that failed.
        path: the file that failed, when one file is to blame.
        reason: a short machine-friendly reason, used in skip reports.
        message: what was wrong and what to do, without the patch and file.
    """

    def __init__(self, patch_id: str, reason: str, message: str, path: str | None = None) -> None:
        where = f" ({path})" if path else ""
        super().__init__(f"patch {patch_id}{where}: {message}")
        self.patch_id = patch_id
        self.reason = reason
        self.path = path
        self.message = message

    def __reduce__(self) -> tuple[type[PatchError], tuple[str, str, str, str | None]]:
        """Rebuilt from its four fields: a worker process's error reaches the parent whole (``-j N``)."""
        return PatchError, (self.patch_id, self.reason, self.message, self.path)


class TiffError(BenHubError):
    """A GeoTIFF cannot be decoded by the strip reader (truncated, compressed, wrong type)."""


class ListError(BenHubError):
    """A split or exclusion list is malformed, unavailable, or inconsistent with the archive."""


class SplitError(BenHubError):
    """A split cannot be computed as asked (bad ratios, unknown method, lists that do not cover)."""


class RepoError(BenHubError):
    """A built dataset repository is incomplete or inconsistent."""


class HubError(BenHubError):
    """The Hub refused or failed a request (authentication, permissions, network after retries)."""


class WeightsError(BenHubError):
    """Model weights cannot be loaded: a missing file, another architecture's or a damaged state dict."""


class DiskFullError(BenHubError):
    """The disk filled up (or a quota was met) while writing; nothing written is left looking complete."""


class DeviceMemoryError(BenHubError):
    """A split does not fit in the accelerator's free memory."""


class RunError(BenHubError):
    """Training runs cannot go on as asked: a checkpoint made with other settings, runs of one launch that
    differ in more than their seed, or seeds of a launch that failed."""
