"""turing_test/throttle.py: wrong admin tokens per client and overall, with a fake clock."""
from __future__ import annotations

from turing_test.throttle import TokenThrottle


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_a_client_is_refused_after_its_failures_until_they_leave_the_window():
    clock = Clock()
    th = TokenThrottle(per_client=3, overall=100, window_s=60, clock=clock)
    for i in range(3):
        assert th.wait_s("a") == 0
        assert th.failed("a") == i + 1
        clock.t += 10
    assert th.wait_s("a") == 30  # the first failure leaves the window at t0 + 60
    assert th.wait_s("b") == 0  # another address is not affected
    clock.t += 30
    assert th.wait_s("a") == 0 and th.failed("a") == 3  # the oldest has left: 2 + this one
    th.succeeded("a")
    assert th.wait_s("a") == 0 and th.failed("a") == 1  # a right token clears the client's failures


def test_all_clients_together_are_limited_and_memory_is_bounded():
    clock = Clock()
    th = TokenThrottle(per_client=5, overall=10, window_s=60, max_clients=4, clock=clock)
    for i in range(10):  # an attacker changing address at every try
        th.failed(f"10.0.0.{i}")
    assert th.wait_s("192.0.2.1") == 60  # everyone waits, at most one window
    assert len(th._failures) == 4
    clock.t += 60
    assert th.wait_s("192.0.2.1") == 0
