"""Work ahead of the encoder and behind it, on background threads, with bounded queues (or,
with ``inline``, on the encoder's own thread).

``ahead`` renders and preprocesses pages while the retriever encodes the previous batch (poppler
already renders in child processes; Pillow's decoding and compression release the GIL), never
holding more than a few items. ``Behind`` writes the encoder's output off its critical path.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")

_DONE = object()
_POLL_S = 0.1


def ahead(
    items: Iterable[Item], prepare: Callable[[Item], Prepared], depth: int, workers: int = 1
) -> Iterator[tuple[Item, Prepared]]:
    """``(item, prepare(item))`` for each of ``items``, in order, produced by a background
    thread at most ``depth`` items ahead of the consumer; with ``workers`` above 1, that many
    threads run ``prepare`` at once (``items`` is still read by one thread, in order).

    An exception is raised in the consumer at the point it happened; when the consumer stops
    early (an error, ``close()``), the producer stops after its current item and work not yet
    started is dropped.

    >>> list(ahead(range(4), lambda n: n * n, depth=2))
    [(0, 0), (1, 1), (2, 4), (3, 9)]
    >>> list(ahead(range(4), lambda n: n * n, depth=2, workers=2))
    [(0, 0), (1, 1), (2, 4), (3, 9)]
    """
    if depth < 1 or workers < 1:
        raise ValueError("depth and workers must be at least 1")
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="prepare") if workers > 1 else None

    def put(entry: object) -> None:
        while not stop.is_set():
            try:
                buffer.put(entry, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                put((item, pool.submit(prepare, item) if pool else _done(prepare(item))))
        except BaseException as error:
            put(error)
        else:
            put(_DONE)
        finally:
            close = getattr(items, "close", None)  # a generator's cleanup, on its own thread
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="render-ahead", daemon=True)
    producer.start()
    try:
        while True:
            entry = buffer.get()
            if entry is _DONE:
                return
            if isinstance(entry, BaseException):
                raise entry
            item, prepared = entry
            yield item, prepared.result()
    finally:
        stop.set()
        producer.join()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def inline(
    items: Iterable[Item], prepare: Callable[[Item], Prepared]
) -> Iterator[tuple[Item, Prepared]]:
    """``ahead``'s contract on the consumer's own thread: each item prepared when it is asked
    for, and ``items`` closed when the consumer stops. For a consumer whose work already takes
    every core (a CPU encoder), where work run beside it costs more than it saves.

    >>> list(inline(range(3), lambda n: n * n))
    [(0, 0), (1, 1), (2, 4)]
    """
    try:
        for item in items:
            yield item, prepare(item)
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


def _done(value: Prepared) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future


class Behind:
    """Runs ``work(item)`` for each submitted item on one background thread, in order, with at
    most ``depth`` items waiting: writes leave the caller's critical path, memory stays bounded.

    ``finish()`` waits for every item and raises the first error; ``submit`` raises it too,
    sooner. Use as a context manager: leaving it stops the thread after its current item.

    >>> done = []
    >>> with Behind(done.append, depth=2) as writer:
    ...     for n in range(3):
    ...         writer.submit(n)
    ...     writer.finish()
    >>> done
    [0, 1, 2]
    """

    def __init__(self, work: Callable[[Item], object], depth: int = 2) -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._work = work
        self._waiting: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-behind", daemon=True)
        self._thread.start()

    def submit(self, item: Item) -> None:
        self._raise()
        self._waiting.put(item)  # blocks while `depth` items wait

    def finish(self) -> None:
        self._waiting.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self._waiting.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            try:
                if self._error is None:  # after an error, the rest is dropped
                    self._work(item)
            except BaseException as error:
                self._error = error
            finally:
                self._waiting.task_done()

    def __enter__(self) -> Behind:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
