"""The per-model lock: first come, first served, reentrant for the thread that holds
it, and a long run (Turns) hands the model over between two steps to the threads
that wait for it. Every test orders threads by events, not by timing."""
from __future__ import annotations

import threading
import time

import pytest
import torch

from cnn_widgets.models.state import ModelLock, Turns, model_lock, preserved


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the other threads"
        time.sleep(0.001)


def test_threads_get_the_lock_in_the_order_they_asked():
    lock, order = ModelLock(), []
    lock.acquire()  # held by this thread while the others line up

    def take(name):
        with lock:
            order.append(name)

    threads = []
    for count, name in enumerate("BCDE", start=1):
        threads.append(threading.Thread(target=take, args=(name,)))
        threads[-1].start()
        wait_until(lambda: lock.waiting == count)  # in line before the next one starts
    lock.release()
    for thread in threads:
        thread.join()
    assert order == list("BCDE")
    assert lock.waiting == 0 and lock.depth == 0


def test_the_holder_may_take_it_again_and_others_wait_for_the_last_release():
    lock, entered = ModelLock(), threading.Event()
    with lock:
        with lock:
            assert lock.depth == 2
            other = threading.Thread(target=lambda: (lock.acquire(), entered.set(), lock.release()))
            other.start()
            wait_until(lambda: lock.waiting == 1)
        assert lock.depth == 1 and not entered.is_set()  # still held once: the other one waits
    other.join()
    assert entered.is_set()


def test_only_the_holder_may_release_it():
    lock = ModelLock()
    with pytest.raises(RuntimeError, match="does not hold the lock"):
        lock.release()


def test_preserved_blocks_share_the_models_lock():
    net = torch.nn.Conv2d(1, 1, 1)
    with preserved(net):
        assert model_lock(net).depth == 1
        with preserved(net):
            assert model_lock(net).depth == 2
    assert model_lock(net).depth == 0


def test_a_long_run_hands_the_model_over_between_two_steps():
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3)).train()
    events, others = [], []

    def other_view():  # a feature-map view on the same model, asking mid-run
        with preserved(net) as module:
            events.append(("other", module.training))

    with Turns(net) as turns:
        for step in range(5):
            handed_over = turns.between_steps()
            events.append(("step", step, handed_over, net.training))
            if step == 2:
                others.append(threading.Thread(target=other_view))
                others[-1].start()
                wait_until(lambda: model_lock(net).waiting == 1)
    others[0].join()
    # The other view got the model right after step 2, before step 3, and saw it in eval
    # mode; the run went on afterwards without waiting for the end.
    assert events == [
        ("step", 0, False, False), ("step", 1, False, False), ("step", 2, False, False),
        ("other", False),
        ("step", 3, True, False), ("step", 4, False, False),
    ]
    assert net.training  # restored after the run


def test_no_hand_over_inside_an_outer_block_of_the_same_thread():
    net = torch.nn.Conv2d(1, 1, 1)
    entered = threading.Event()
    with preserved(net):
        with Turns(net) as turns:
            other = threading.Thread(target=lambda: (model_lock(net).acquire(), entered.set(), model_lock(net).release()))
            other.start()
            wait_until(lambda: model_lock(net).waiting == 1)
            assert turns.between_steps() is False  # the outer block still holds the model
            assert not entered.is_set()
    other.join()
    assert entered.is_set()
