"""TensorBoard event files of a run, in ``RUN/tensorboard``: every number of ``metrics.jsonl`` as a scalar, each
preview grid as an image, health warnings as text. :class:`gankit.train.log.MetricsLog` mirrors its rows here.

Optional: without the ``tensorboard`` package, or with ``train.tensorboard=false``, nothing is written and training
is unchanged. The writer opens at the first event, so a run that logs nothing leaves no folder. A resume or a
rollback to step ``s`` marks a restart at ``s + 1`` (a ``SessionLog.START``, what ``SummaryWriter``'s
``purge_step`` writes): TensorBoard's readers then drop what was written past the checkpoint (by a killed process,
say), as ``metrics.jsonl`` drops its rows, so no step is read twice or backwards.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
from PIL import Image

FOLDER = "tensorboard"
EVENT_FILE = re.compile(r"events\.out\.tfevents\.(\d{10,})\..+\.\d+\.\d+")  # SummaryWriter's: time.host.pid.counter
_NOT_SCALARS = ("step", "time")  # the row's coordinates, not curves


class Board:
    """The event files of one run (rank 0's :class:`~gankit.train.log.MetricsLog` holds the only one)."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.folder = folder
        self.enabled = enabled  # False: train.tensorboard=false, or the package is missing (found at the first event)
        self.writer = None  # a torch SummaryWriter, opened at the first event
        self.purge_step: int | None = None  # events at this step or later, written before it was set, are stale

    def _open(self):
        """The writer, opened at the first call (None when disabled or when TensorBoard cannot be imported)."""
        if self.writer is not None or not self.enabled:
            return self.writer
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # the optional board extra is not installed
            self.enabled = False
            return None
        _wait_past_newest(self.folder)
        self.writer = SummaryWriter(str(self.folder), purge_step=self.purge_step)
        self.purge_step = None
        return self.writer

    def scalars(self, row: dict) -> None:
        """Every number of a metrics row (losses, D(x), learning rates, steps/s, eval/...) at ``row["step"]``."""
        values = {k: v for k, v in row.items() if _is_number(v) and k not in _NOT_SCALARS}
        if values and (writer := self._open()) is not None:
            for tag, value in values.items():
                writer.add_scalar(tag, float(value), global_step=int(row["step"]))

    def text(self, step: int, message: str) -> None:
        """A health warning or event (a rollback, a stop), under the tag ``health``."""
        if (writer := self._open()) is not None:
            writer.add_text("health", message, global_step=step)

    def image(self, step: int, png: Path) -> None:
        """A preview grid read from its PNG, under the tag ``samples``."""
        if (writer := self._open()) is not None:
            with Image.open(png) as image:
                pixels = np.asarray(image.convert("RGB"))  # (H, W, 3) uint8
            writer.add_image("samples", pixels, global_step=step, dataformats="HWC")

    def purge_after(self, step: int) -> None:
        """Mark the events past ``step`` stale: the run goes on from ``step`` (a resume or a rollback)."""
        if self.writer is None:  # a resume: the next writer opens with the marker
            self.purge_step = step + 1
            return
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog  # a rollback: the marker in the same file

        self.writer.file_writer.add_event(Event(step=step + 1, session_log=SessionLog(status=SessionLog.START)))

    def flush(self) -> None:
        """Write what is queued to disk (on every checkpoint)."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the writer; a later event opens a new file."""
        writer, self.writer = self.writer, None
        if writer is not None:
            writer.close()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _wait_past_newest(folder: Path) -> None:
    """Readers take a folder's event files in the order of their names, which begin with the second each was
    opened: a new file opened within the second of the newest one (a writer closed and a new one opened at once, or
    a resume quicker than a second) waits for the next second, so that it sorts after it."""
    stamps = [int(m.group(1)) for p in folder.glob("events.out.tfevents.*") if (m := EVENT_FILE.fullmatch(p.name))]
    wait = max(stamps, default=0) + 1 - time.time()
    if 0 < wait <= 1:  # (a file stamped later than that comes from a clock set back: no wait would help)
        time.sleep(wait)
