"""Worker processes for ``-j``: started by a fork server where the platform has one (Linux, macOS), else spawned
(Windows).  Never forked from the working process: by the time a pool starts it runs threads (pyarrow's, the
progress bars', the S1 staging), and a fork copies their locks in whatever state they are in."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.context import BaseContext


def start_method() -> str:
    """``forkserver`` where the platform offers it, else ``spawn`` (both start clean interpreters)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def process_context() -> BaseContext:
    return multiprocessing.get_context(start_method())


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes started the :func:`start_method` way."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=process_context())
