"""Rendering ahead of the encoder: order, bounded look-ahead, errors and early stops."""

from __future__ import annotations

import threading
import time

import pytest

from rag.ahead import Behind, ahead


def test_items_come_in_order_with_their_prepared_value():
    assert list(ahead(iter("abcde"), str.upper, depth=2)) == [(c, c.upper()) for c in "abcde"]


def test_the_producer_runs_at_most_depth_items_ahead():
    produced = []

    def source():
        for n in range(50):
            produced.append(n)
            yield n

    iterator = ahead(source(), lambda n: n, depth=3)
    assert next(iterator) == (0, 0)
    time.sleep(0.3)  # let the producer run as far as it may
    # one consumed, `depth` waiting in the queue, one prepared and blocked on the full queue
    assert len(produced) <= 1 + 3 + 1
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
    release = threading.Event()
    with Behind(lambda n: release.wait(), depth=2) as writer:
        writer.submit(0)  # taken by the thread, blocked in work
        time.sleep(0.3)
        writer.submit(1)
        writer.submit(2)  # two waiting: the next submit must block
        blocked = threading.Thread(target=writer.submit, args=(3,))
        blocked.start()
        blocked.join(0.3)
        assert blocked.is_alive()
        release.set()
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
