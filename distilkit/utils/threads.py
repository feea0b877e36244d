"""Overlap I/O with inference: decoding ahead and writing behind in threads, with bounded queues so memory
stays constant (PyAV, Pillow and NumPy release the GIL in their heavy parts)."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

_DONE = object()


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Yield `items`, produced by a background thread at most `depth` ahead; its errors re-raise here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((_DONE, None))
        except BaseException as e:  # handed to the consumer, raised there
            q.put((_DONE, e))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()


class WriteBehind:
    """Run write jobs in order on one background thread, at most `depth` jobs in flight."""

    def __init__(self, depth: int = 2):
        self.pool, self.pending, self.depth = ThreadPoolExecutor(max_workers=1), deque(), depth

    def submit(self, fn: Callable, *args) -> None:
        self.pending.append(self.pool.submit(fn, *args))
        while len(self.pending) > self.depth:
            self.pending.popleft().result()

    def drain(self) -> None:
        while self.pending:
            future: Future = self.pending.popleft()
            future.result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)
