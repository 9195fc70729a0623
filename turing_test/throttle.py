"""Throttling of wrong admin tokens (pure logic: no gradio, no database).

Each client (the address the request came from) may get the admin token wrong `per_client`
times within `window_s`; past that, its attempts are refused, right token or not, until its
oldest failure leaves the window. Against an attacker who changes address, all clients together
may fail `overall` times within the window; past that every attempt is refused for a while
(the admin waits at most `window_s`). A right token clears its client's failures.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class TokenThrottle:
    per_client: int = 5
    overall: int = 50
    window_s: float = 300.0
    max_clients: int = 10_000  # addresses remembered at most (the oldest are forgotten)
    clock: object = time.monotonic
    _failures: dict = field(default_factory=dict)  # client -> deque of failure times
    _all: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _prune(self, q: deque, now: float) -> None:
        while q and now - q[0] >= self.window_s:
            q.popleft()

    def wait_s(self, client: str) -> float:
        """Seconds until this client may try again (0: it may try now)."""
        now = self.clock()
        with self._lock:
            self._prune(self._all, now)
            q = self._failures.get(client)
            if q is not None:
                self._prune(q, now)
            waits = [0.0]
            if q is not None and len(q) >= self.per_client:
                waits.append(q[0] + self.window_s - now)
            if len(self._all) >= self.overall:
                waits.append(self._all[0] + self.window_s - now)
            return max(waits)

    def failed(self, client: str) -> int:
        """Record a wrong token; returns this client's failures within the window."""
        now = self.clock()
        with self._lock:
            q = self._failures.pop(client, None) or deque()
            self._prune(q, now)
            q.append(now)
            self._failures[client] = q  # re-inserted: the dict stays ordered by last failure
            while len(self._failures) > self.max_clients:
                self._failures.pop(next(iter(self._failures)))
            self._all.append(now)
            self._prune(self._all, now)
            return len(q)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
