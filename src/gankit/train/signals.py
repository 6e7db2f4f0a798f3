"""Stopping on request: SIGTERM (preemption) and SIGINT (Ctrl-C) ask the training loop to stop after the current step;
a second SIGINT interrupts at once."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from ..errors import Interrupted


class StopRequests:
    """Records the signal that asked the loop to stop (``received``), while :meth:`listening` is active."""

    def __init__(self) -> None:
        self.received: int | None = None

    @contextmanager
    def listening(self) -> Iterator[None]:
        """Install the handlers (main thread only: elsewhere signals cannot be handled) and restore the old ones."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._ask) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def interrupted(self, step: int, run_dir, saved, previous=None) -> Interrupted:
        """The error that ends a stopped run: where the checkpoint was ``saved`` and how to resume (or, when the
        weights held NaN and none was saved, the ``previous`` one); the exit code is 128 + the signal."""
        signum = self.received or signal.SIGTERM  # None: another rank was signalled
        name = signal.Signals(signum).name
        if saved is None:
            return Interrupted(f"{name} received at step {step}; the weights hold NaN or Inf, so no checkpoint was "
                               f"saved: --resume continues from {previous}", exit_code=128 + signum)
        return Interrupted(f"{name} received: stopped at step {step}, checkpoint saved to {saved}. Continue with: "
                           f"gankit train --out {run_dir} --resume", exit_code=128 + signum)

    def _ask(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum
