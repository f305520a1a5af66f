"""Ctrl-C at a safe place: between chunks, never inside compiled code or a compiler callback.

Python runs a SIGINT handler only between bytecodes of the main thread. While a compiled
Numba loop runs (``nogil``, possibly on the main thread) the interrupt waits; while Numba or
LLVM compiles, the handler may fire inside a ``ctypes`` callback, where the
``KeyboardInterrupt`` is printed as "Exception ignored on calling ctypes callback" and lost:
the run went on to the end. :class:`deferred_interrupts` replaces the handler for the span of
a run: the first Ctrl-C is recorded, and :meth:`check` raises ``KeyboardInterrupt`` at the
next chunk boundary, where the state is consistent and the draws so far can be returned. A
second Ctrl-C raises at once (the user insists).

Only the main thread can install signal handlers, and only Python's default handler is
replaced (a handler the user or IPython installed is left alone, and works as before).
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType


class deferred_interrupts:
    """Context manager: Ctrl-C is deferred to :meth:`check` (see the module docstring)."""

    def __init__(self, message: str = "interrupt received: stopping after this chunk") -> None:
        self.message = message
        self.requested = False
        self._previous = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # a second Ctrl-C: do not wait
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{self.message} (Ctrl-C again to stop at once)", file=sys.stderr, flush=True)

    def __enter__(self) -> deferred_interrupts:
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGINT)
            if current is signal.default_int_handler:
                self._previous = current
                signal.signal(signal.SIGINT, self._handle)
                self._installed = True
        return self

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since the last check."""
        if self.requested:
            self.requested = False
            raise KeyboardInterrupt

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A Ctrl-C after the last check (while the last chunk ran) finds the run complete:
        # its result is returned rather than thrown away.
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
