"""The line in front of the generator: at most N answers at once, M waiting, "busy" past that.

Example:
    >>> line = AnswerQueue(concurrency=1, max_waiting=16)
    >>> with line.join() as place:   # raises QueueFull when 16 are already waiting
    ...     place.wait()             # blocks until it is this request's turn
    ...     answer = rag.ask(question)
"""

from __future__ import annotations

import threading
import time
from collections import deque

from rag import RagError


# -- the line in front of the generator -----------------------------------------------
class QueueFull(RagError):
    """The line in front of the generator is full; the message is meant for the user."""


class Place:
    """One request's place in an :class:`AnswerQueue` (a context manager that leaves the line)."""

    def __init__(self, queue: AnswerQueue, admitted: bool) -> None:
        self._queue = queue
        self.admitted = admitted
        self._left = False

    @property
    def ahead(self) -> int:
        """Requests in line before this one (0 once admitted)."""
        return self._queue._ahead(self)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until it is this request's turn, or ``timeout`` seconds; True when admitted."""
        return self._queue._wait(self, timeout)

    def leave(self) -> None:
        """Give up the place (or the slot, once admitted). Safe to call twice."""
        self._queue._leave(self)

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc: object) -> None:
        self.leave()


class AnswerQueue:
    """A first-come, first-served line in front of the generator.

    At most ``concurrency`` answers run at once and up to ``max_waiting`` more wait in line;
    past that, :meth:`join` refuses at once with a readable message, so an overloaded server
    says it is busy instead of leaving requests hanging.

    Args:
        concurrency: answers computed at the same time (``ui.generation_concurrency``).
        max_waiting: requests that may wait for a slot (``ui.max_queue``).

    Example:
        >>> line = AnswerQueue(concurrency=1, max_waiting=16)
        >>> with line.join() as place:   # raises QueueFull when 16 are already waiting
        ...     place.wait()             # blocks until it is this request's turn
        ...     answer = rag.ask(question)
    """

    def __init__(self, concurrency: int = 1, max_waiting: int = 32) -> None:
        if concurrency < 1:
            raise ValueError(f"ui.generation_concurrency must be >= 1, got {concurrency}")
        if max_waiting < 0:
            raise ValueError(f"ui.max_queue must be >= 0, got {max_waiting}")
        self.concurrency = concurrency
        self.max_waiting = max_waiting
        self._cond = threading.Condition()
        self._line: deque[Place] = deque()
        self.running = 0
        self.admitted_total = 0
        self.refused_total = 0

    @property
    def waiting(self) -> int:
        """Requests waiting in line now."""
        with self._cond:
            return len(self._line)

    def busy_message(self) -> str:
        """What a refused request is told (call with the lock held or accept a racy count)."""
        if self.max_waiting == 0:
            return (
                f"The server is busy: it is answering {self.running} question{'s' * (self.running != 1)} and keeps no line "
                f"(ui.max_queue = 0). Try again in a moment."
            )
        n = len(self._line)
        return f"The server is busy: {n} question{'s are' if n != 1 else ' is'} waiting (ui.max_queue = {self.max_waiting}). Try again in a moment."

    def join(self) -> Place:
        """Take a slot now if one is free and nobody waits, else a place in line.

        Raises:
            QueueFull: ``max_waiting`` requests are already waiting.
        """
        with self._cond:
            if self.running < self.concurrency and not self._line:
                self.running += 1
                self.admitted_total += 1
                return Place(self, admitted=True)
            if len(self._line) >= self.max_waiting:
                self.refused_total += 1
                raise QueueFull(self.busy_message())
            place = Place(self, admitted=False)
            self._line.append(place)
            return place

    def _ahead(self, place: Place) -> int:
        with self._cond:
            if place.admitted or place._left:
                return 0
            for i, other in enumerate(self._line):
                if other is place:
                    return i
            return 0

    def _wait(self, place: Place, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not place.admitted:
                if place._left:
                    return False
                if self.running < self.concurrency and self._line and self._line[0] is place:
                    self._line.popleft()
                    self.running += 1
                    self.admitted_total += 1
                    place.admitted = True
                    self._cond.notify_all()  # the next in line may be admitted too (concurrency > 1)
                    break
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _leave(self, place: Place) -> None:
        with self._cond:
            if place._left:
                return
            place._left = True
            if place.admitted:
                self.running -= 1
            else:
                try:
                    self._line.remove(place)
                except ValueError:
                    pass
            self._cond.notify_all()
