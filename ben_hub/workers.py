"""Worker processes for ``-j``: started by a fork server where the platform has one (Linux, macOS), else spawned
(Windows).  Never forked from the working process: by the time a pool starts it runs threads (pyarrow's, the
progress bars', the S1 staging), and a fork copies their locks in whatever state they are in.

Each worker ends when the process that started it ends (:func:`exit_with_parent`): one killed with ``kill -9``, or
by the kernel's out-of-memory killer, would otherwise leave its workers waiting forever on queues nobody writes to.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import wait
from multiprocessing.context import BaseContext

ORPHAN_EXIT_CODE = 70
"""What a worker exits with when its parent is gone (``EX_SOFTWARE``); nobody is left to read it."""


def start_method() -> str:
    """``forkserver`` where the platform offers it, else ``spawn`` (both start clean interpreters)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def process_context() -> BaseContext:
    return multiprocessing.get_context(start_method())


def exit_with_parent() -> None:
    """In a worker process: a thread that ends the process as soon as its parent's sentinel says the parent is gone.

    The worker exits at once, without cleaning up: what it was writing is a temp file, which the rerun deletes
    (a build resumes from its finished shards).  Nothing happens in the main process.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(ORPHAN_EXIT_CODE)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of ``workers`` processes started the :func:`start_method` way, each ending with its parent."""
    return ProcessPoolExecutor(max_workers=workers, mp_context=process_context(), initializer=exit_with_parent)
