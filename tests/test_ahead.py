"""Rendering ahead of the encoder: order, bounded look-ahead, errors and early stops."""

from __future__ import annotations

import threading
import time

import pytest

from rag.pipelining import Behind, ahead, inline


def test_items_come_in_order_with_their_prepared_value():
    assert list(ahead(iter("abcde"), str.upper, depth=2)) == [(c, c.upper()) for c in "abcde"]


def test_the_producer_runs_at_most_depth_items_ahead():
    # One consumed, `depth` waiting in the queue, one prepared and blocked on the full queue:
    # the producer reaches item 4, and goes no further until the consumer takes another.
    reached = {n: threading.Event() for n in range(50)}

    def source():
        for n in range(50):
            reached[n].set()
            yield n

    iterator = ahead(source(), lambda n: n, depth=3)
    assert next(iterator) == (0, 0)
    assert reached[1 + 3].wait(timeout=30)  # as far as it may go
    assert not reached[1 + 3 + 1].wait(timeout=0.3)  # and no further
    assert next(iterator) == (1, 1)
    assert reached[1 + 3 + 1].wait(timeout=30)  # one taken: one more produced
    iterator.close()


def test_the_producer_overlaps_the_consumer():
    # While the consumer holds item 0, the producer prepares item 1: a serial loop would
    # never set the event.
    prepared_next = threading.Event()

    def prepare(n: int) -> int:
        if n == 1:
            prepared_next.set()
        return n

    iterator = ahead(range(3), prepare, depth=2)
    assert next(iterator) == (0, 0)
    assert prepared_next.wait(timeout=30)
    assert [item for item, _ in iterator] == [1, 2]


def test_a_producer_error_is_raised_in_the_consumer_after_the_good_items():
    def source():
        yield 1
        yield 2
        raise ValueError("page 3 could not be rendered")

    seen = []
    with pytest.raises(ValueError, match="page 3"):
        for item, _ in ahead(source(), lambda n: n, depth=4):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_stops_and_closes_the_producer():
    closed = threading.Event()

    def source():
        try:
            yield from range(1000)
        finally:
            closed.set()

    iterator = ahead(source(), lambda n: n, depth=2)
    next(iterator)
    iterator.close()  # joins the producer
    assert closed.is_set()
    assert not any(t.name == "render-ahead" for t in threading.enumerate())


def test_workers_prepare_items_at_once_and_keep_their_order():
    both_started = threading.Barrier(2, timeout=30)  # a single worker would time out here

    def prepare(n: int) -> int:
        if n < 2:
            both_started.wait()
        time.sleep(0.05 * (5 - n))  # later items finish first
        return n * n

    assert list(ahead(range(6), prepare, depth=3, workers=2)) == [(n, n * n) for n in range(6)]


def test_a_worker_error_is_raised_in_order_and_the_pool_is_shut_down():
    def prepare(n: int) -> int:
        if n == 2:
            raise ValueError("chunk 2 is corrupt")
        time.sleep(0.05 if n < 2 else 0)
        return n

    seen = []
    with pytest.raises(ValueError, match="chunk 2"):
        for item, _ in ahead(range(20), prepare, depth=4, workers=3):
            seen.append(item)
    assert seen == [0, 1]
    assert not any(t.name.startswith("prepare") for t in threading.enumerate())


def test_closing_early_drops_work_not_yet_started():
    started = []

    def prepare(n: int) -> int:
        started.append(n)
        time.sleep(0.1)
        return n

    iterator = ahead(range(100), prepare, depth=2, workers=2)
    assert next(iterator) == (0, 0)
    iterator.close()
    assert len(started) <= 1 + 2 + 2  # consumed, queued, and one per worker at most
    assert not any(t.name.startswith("prepare") for t in threading.enumerate())


def test_depth_and_workers_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        next(ahead(range(3), str, depth=2, workers=0))


def test_inline_prepares_each_item_on_the_consumers_thread_when_asked_for():
    prepared, threads = [], set()

    def prepare(n: int) -> int:
        prepared.append(n)
        threads.add(threading.current_thread())
        return n * n

    iterator = inline(range(5), prepare)
    assert prepared == []  # nothing before the first item is asked for
    assert next(iterator) == (0, 0) and prepared == [0]
    assert list(iterator) == [(n, n * n) for n in range(1, 5)]
    assert threads == {threading.current_thread()}


def test_inline_raises_errors_in_order_and_closes_its_items_when_stopped():
    closed = []

    def source():
        try:
            yield from range(1000)
        finally:
            closed.append(True)

    def prepare(n: int) -> int:
        if n == 2:
            raise ValueError("chunk 2 is corrupt")
        return n

    seen = []
    with pytest.raises(ValueError, match="chunk 2"):
        for item, _ in inline(source(), prepare):
            seen.append(item)
    assert seen == [0, 1] and closed == [True]
    early = inline(source(), prepare)
    next(early)
    early.close()
    assert closed == [True, True]


def test_behind_runs_work_in_order_off_the_callers_thread():
    threads, done = set(), []

    def work(n: int) -> None:
        threads.add(threading.current_thread().name)
        done.append(n)

    with Behind(work, depth=2) as writer:
        for n in range(20):
            writer.submit(n)
        writer.finish()
    assert done == list(range(20))
    assert threads == {"write-behind"}


def test_behind_holds_at_most_depth_waiting_items():
    release, working = threading.Event(), threading.Event()

    def work(n: int) -> None:
        working.set()
        release.wait()

    with Behind(work, depth=2) as writer:
        writer.submit(0)
        assert working.wait(timeout=30)  # taken by the thread, blocked in work
        writer.submit(1)
        writer.submit(2)  # two waiting: the next submit must block
        submitted = threading.Event()

        def submit_third() -> None:
            writer.submit(3)
            submitted.set()

        blocked = threading.Thread(target=submit_third)
        blocked.start()
        assert not submitted.wait(timeout=0.3)
        release.set()
        assert submitted.wait(timeout=30)  # the work went on: room for it
        blocked.join()
        writer.finish()


def test_behind_reports_the_first_error_and_drops_the_rest():
    done = []

    def work(n: int) -> None:
        if n == 1:
            raise OSError("disk full")
        done.append(n)

    with Behind(work) as writer:
        writer.submit(0)
        writer.submit(1)
        writer.submit(2)
        with pytest.raises(OSError, match="disk full"):
            writer.finish()
        with pytest.raises(OSError, match="disk full"):
            writer.submit(3)
    assert done == [0]
