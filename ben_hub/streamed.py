"""Writing the shards of a tarball build: in this process, or in ``-j`` worker processes beside the stream.

A tarball is read forwards once, by one process: its decompression cannot be split.  What each patch costs after
that (decoding its GeoTIFFs, encoding and compressing the parquet pages, the statistics) is the larger part, and
it can run elsewhere.  :class:`ShardProcesses` gives each open shard to one worker process and sends it the
patches of that shard as they come out of the stream, in batches of :data:`BATCH`; the stream decides which
patch goes into which shard, so the shards are the same whichever process writes them and however many there are.

Both kinds of sink take the same calls: ``open(task)``, ``add(relpath, meta, files)``, ``close(relpath)``, then
``finish()`` after the last patch, or ``abort()`` after an error (temp files deleted, nothing left looking done).
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import queue
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any, Protocol

from .archive import read_pixels
from .errors import RepoError
from .repo import cell_of
from .shards import ShardTask, ShardWriter, WriteSettings, remove_stale_temps
from .workers import exit_with_parent, process_context

BATCH = 16
"""Calls sent to a worker process in one message, nearly all of them patches (16 v1 S2 patches: about 2.6 MB of
GeoTIFFs)."""
QUEUED = 4
"""Messages that may wait for each worker process; the stream waits when they are all taken, so memory is bounded
(about ``BATCH * QUEUED`` patches a worker)."""
POLL_S = 0.5
"""How often a waiting stream looks whether a worker process failed or died."""

OnDone = Callable[[dict[str, Any]], Any]


class ShardSink(Protocol):
    def open(self, task: ShardTask) -> None: ...
    def add(self, relpath: str, meta: dict[str, Any], files: dict[str, bytes]) -> None: ...
    def close(self, relpath: str) -> None: ...
    def finish(self) -> None: ...
    def abort(self) -> None: ...


class InlineShards:
    """Shards written in this process, one :class:`~ben_hub.shards.ShardWriter` per open shard; each finished
    shard's record goes to ``on_done``.  Also what each worker process of :class:`ShardProcesses` runs."""

    def __init__(self, settings: WriteSettings, out: Path, on_done: OnDone) -> None:
        self.settings, self.out, self.on_done = settings, out, on_done
        self.writers: dict[str, ShardWriter] = {}

    def open(self, task: ShardTask) -> None:
        self.writers[task.relpath] = ShardWriter(task, self.settings, self.out)

    def add(self, relpath: str, meta: dict[str, Any], files: dict[str, bytes]) -> None:
        """One patch: ``meta`` is its index row, ``files`` its S2 band files from the stream (S1 is read here)."""
        writer = self.writers[relpath]
        where = (meta["patch_id"], meta["_s2_dir"], meta["_s1_dir"])
        writer.add(meta, functools.partial(read_pixels, self.settings.spec, *where, writer.bands, files))

    def close(self, relpath: str) -> None:
        self.on_done(self.writers.pop(relpath).close())

    def finish(self) -> None:
        for relpath in list(self.writers):
            self.close(relpath)

    def abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()  # their temp files: a full disk gets the space back
        self.writers.clear()


def portable(err: BaseException) -> BaseException:
    """``err`` itself when it pickles (ben-hub's errors, ``OSError``), else a ``RuntimeError`` carrying its text."""
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:  # any error that cannot cross a process boundary
        return RuntimeError(f"{type(err).__name__}: {err}")
    return err


def serve(worker: int, inbox: Queue, outbox: Queue, settings: WriteSettings, out: Path) -> None:
    """Worker process ``worker``: run batches of ``(call, args)`` on its own :class:`InlineShards` until ``None``.

    Sends ``("done", record)`` for each finished shard, then ``("exit", worker)``; on an error, deletes its temp
    files and sends ``("error", err)`` instead.
    """
    exit_with_parent()
    shards = InlineShards(settings, out, lambda record: outbox.put(("done", record)))
    calls: dict[str, Callable[..., None]] = {"open": shards.open, "add": shards.add, "close": shards.close}
    try:
        while (batch := inbox.get()) is not None:
            for call, args in batch:
                calls[call](*args)
    except BaseException as err:  # reported to the stream, which raises it
        shards.abort()
        outbox.put(("error", portable(err)))
        return
    outbox.put(("exit", worker))


class ShardProcesses:
    """Shards written by ``count`` worker processes (:func:`serve`) while this process reads the stream.

    Each shard, when opened, goes to the worker whose open shards' cells took the fewest patches of the stream so
    far, so the largest cells (``train/train`` takes about a third of v1) do not share a worker.  A worker's error
    is raised here, as it was raised there; a worker that dies is reported with what to do (rerun: it resumes).
    """

    def __init__(self, count: int, settings: WriteSettings, out: Path, on_done: OnDone) -> None:
        context = process_context()
        self.out, self.on_done = out, on_done
        self.outbox: Queue = context.Queue()
        self.inboxes: list[Queue] = [context.Queue(maxsize=QUEUED) for _ in range(count)]
        self.batches: list[list[tuple[str, tuple]]] = [[] for _ in range(count)]
        self.owner: dict[str, int] = {}  # open shard -> worker
        self.opened: list[str] = []  # every shard given to a worker, for abort's temp files
        self.arrived: dict[str, int] = {}  # patches sent so far, by cell
        self.exited: set[int] = set()
        self.processes: list[BaseProcess] = []
        for worker, inbox in enumerate(self.inboxes):
            args = (worker, inbox, self.outbox, settings, out)
            process = context.Process(target=serve, args=args, daemon=True)  # type: ignore[attr-defined]
            process.start()
            self.processes.append(process)

    def least_loaded(self) -> int:
        load = [0] * len(self.processes)
        for relpath, worker in self.owner.items():
            load[worker] += self.arrived.get(cell_of(relpath), 0)
        return min(range(len(load)), key=lambda k: (load[k], k))

    def open(self, task: ShardTask) -> None:
        worker = self.owner[task.relpath] = self.least_loaded()
        self.opened.append(task.relpath)
        self.batches[worker].append(("open", (task,)))

    def add(self, relpath: str, meta: dict[str, Any], files: dict[str, bytes]) -> None:
        worker, cell = self.owner[relpath], cell_of(relpath)
        self.arrived[cell] = self.arrived.get(cell, 0) + 1
        self.batches[worker].append(("add", (relpath, meta, files)))
        if len(self.batches[worker]) >= BATCH:
            self.flush(worker)

    def close(self, relpath: str) -> None:
        self.batches[self.owner.pop(relpath)].append(("close", (relpath,)))

    def flush(self, worker: int) -> None:
        batch, self.batches[worker] = self.batches[worker], []
        self.put(worker, batch)
        self.collect()

    def put(self, worker: int, message: list | None) -> None:
        """Queue ``message`` for ``worker``, waiting while its queue is full, and raising what a worker reports."""
        while True:
            try:
                self.inboxes[worker].put(message, timeout=POLL_S)
                return
            except queue.Full:
                self.collect()
                self.check_alive()

    def handle(self, kind: str, value: Any) -> None:
        if kind == "error":
            raise value
        if kind == "exit":
            self.exited.add(value)
        else:
            self.on_done(value)

    def collect(self, timeout: float | None = None) -> bool:
        """Handle the workers' messages waiting now (or the next, within ``timeout``); ``False`` if there were none."""
        seen = False
        with contextlib.suppress(queue.Empty):
            while True:
                message = self.outbox.get(timeout=timeout) if timeout and not seen else self.outbox.get_nowait()
                self.handle(*message)
                seen = True
        return seen

    def check_alive(self) -> None:
        dead = [k for k, p in enumerate(self.processes) if k not in self.exited and p.exitcode is not None]
        if not dead:
            return
        self.collect(POLL_S)  # what it said before it exited (its error) comes first
        code = self.processes[dead[0]].exitcode
        raise RepoError(
            f"a process writing shards of {self.out} died (exit code {code}; -9 is often the kernel's out-of-memory "
            "killer); run the same command again: the build resumes where it stopped, with fewer -j if memory is short"
        )

    def finish(self) -> None:
        """Close the open shards, let every worker finish, and hand their records to ``on_done``."""
        for relpath in list(self.owner):
            self.close(relpath)
        for worker in range(len(self.processes)):
            self.flush(worker)
            self.put(worker, None)
        while len(self.exited) < len(self.processes):
            if not self.collect(POLL_S):
                self.check_alive()
        for process in self.processes:
            process.join()
        for pipe in [*self.inboxes, self.outbox]:  # their feeder threads end now, not when collected
            pipe.close()
            pipe.join_thread()

    def abort(self) -> None:
        """Stop every worker at once and delete the temp files of the shards they were given (a finished shard has
        none; one stopped while closing has its parquet renamed into place but no record, so it is redone)."""
        for process in self.processes:
            if process.exitcode is None:
                process.terminate()
        for process in self.processes:
            process.join()
        for inbox in self.inboxes:
            inbox.cancel_join_thread()  # a stopped worker leaves its queue unread: exiting must not wait on it
            inbox.close()
        for relpath in self.opened:
            remove_stale_temps(self.out / relpath)


def shard_sink(writers: int, settings: WriteSettings, out: Path, on_done: OnDone) -> ShardSink:
    """Where a tarball build's shards are written: in this process (``writers == 0``) or by that many processes."""
    if writers <= 0:
        return InlineShards(settings, out, on_done)
    return ShardProcesses(writers, settings, out, on_done)
