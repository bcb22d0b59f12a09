"""Run logging: TensorBoard scalars with the tags shared by every agent (ARCHITECTURE.md, "Logging"; the x-axis
is env steps), the same scalars to any experiment trackers (``rlzoo/trackers.py``) and a console progress bar."""

from __future__ import annotations

import io
import itertools
import os
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from rlzoo.trackers import Tracker


_FILE_NUMBERS = itertools.count()


class EventFile:
    """A TensorBoard event file written in the calling thread, flushed when ``flush_secs`` have passed (checked at
    each write and at each ``RunLogger.step``) and on ``close``.

    The same file torch's ``SummaryWriter`` writes (its name, the ``brain.Event:2`` version record, on a resume the
    purge of every later step), without its writer thread: ``SummaryWriter.add_scalar`` costs ≈ 120 µs an event, most
    of it handing the event to that thread, and a seed batch's K threads contend for the interpreter lock; here an
    event costs ≈ 17 µs (protocol buffer and a buffered write).
    """

    def __init__(self, log_dir: Path, purge_step: int | None = None, flush_secs: float = 10.0) -> None:
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event = Event
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}.{os.getpid()}.{next(_FILE_NUMBERS)}"
        self.path = Path(log_dir) / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")  # noqa: SIM115 (open until close)
        self._records = RecordWriter(self._file)
        self._flush_secs, self._flushed = flush_secs, time.monotonic()
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))
        if purge_step is not None:  # TensorBoard drops the steps ≥ purge_step that earlier files logged
            self._write(Event(wall_time=time.time(), step=purge_step, file_version="brain.Event:2"))
            self._write(Event(wall_time=time.time(), step=purge_step, session_log=SessionLog(status=SessionLog.START)))
        self.flush()

    def _write(self, event: Any) -> None:
        self._records.write(event.SerializeToString())
        self.flush_if_due()

    def flush_if_due(self) -> None:
        """Flush when ``flush_secs`` have passed since the last flush (what TensorBoard shows of a running run)."""
        if time.monotonic() - self._flushed >= self._flush_secs:
            self.flush()

    def summary(self, summary: Any, step: int) -> None:
        """Write a ``Summary`` protocol buffer at ``step``."""
        self._write(self._event(wall_time=time.time(), step=int(step), summary=summary))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Several scalars at ``step`` as one event (one record to write; TensorBoard reads each tag as its own)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        self.summary(Summary(value=[Summary.Value(tag=tag, simple_value=float(v)) for tag, v in values.items()]), step)

    def flush(self) -> None:
        self._file.flush()
        self._flushed = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            self._file.close()


class RunLogger:
    """Writes TensorBoard scalars into ``run_dir`` and drives a progress bar (steps, return, steps/s).

    ``RunLogger()`` with no directory and no progress is a silent logger that only remembers the
    latest value of each tag (``last``), which is what library calls of ``learn`` get by default.
    Every scalar goes through ``scalars`` (``scalar`` and ``episode`` call it): the one method to override to see them.
    """

    def __init__(
        self,
        run_dir: str | Path | None = None,
        total_steps: int | None = None,
        *,
        tensorboard: bool = True,
        progress: bool | None = False,
        start_step: int = 0,
        sps_interval_s: float = 1.0,
        trackers: Sequence[Tracker] = (),
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.trackers = list(trackers)
        self.writer: EventFile | None = None
        if self.run_dir is not None and tensorboard:
            # on resume, TensorBoard drops what the interrupted run logged after its checkpoint (steps > start_step;
            # everything up to start_step was logged and flushed before that checkpoint was written: Trainer)
            purge = start_step + 1 if start_step > 0 else None
            if purge is not None:
                wait_for_a_later_second(self.run_dir)
            self.writer = EventFile(self.run_dir, purge_step=purge)
        show = sys.stderr.isatty() if progress is None else progress
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", disable=not show, dynamic_ncols=True)
        self.last: dict[str, float] = {}
        self._sps_interval = sps_interval_s
        self._sps_t = time.perf_counter()
        self._sps_step = start_step
        self._step = start_step

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Log one scalar against env step ``step``."""
        self.scalars({tag: value}, step)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        """Log several scalars against env step ``step`` (one TensorBoard event)."""
        values = {tag: float(value) for tag, value in values.items()}
        self.last.update(values)
        if self.writer is not None:
            self.writer.scalars(values, step)
        for tracker in self.trackers:
            for tag, value in values.items():
                tracker.scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        """Log a text sample (e.g. completions) against env step ``step``."""
        if self.writer is not None:
            from torch.utils.tensorboard.summary import text as text_summary

            self.writer.summary(text_summary(tag, text), step)

    def video(self, tag: str, frames: Sequence[np.ndarray], step: int, fps: int) -> None:
        """Show ``frames`` (H, W, 3 uint8) in TensorBoard's images tab as an animated GIF at half size (what torch's
        ``add_video`` writes, without its moviepy dependency); nothing without TensorBoard or imageio."""
        if self.writer is None:
            return
        try:
            import imageio.v2 as imageio
        except ImportError:
            return
        from tensorboard.compat.proto.summary_pb2 import Summary

        small = [np.ascontiguousarray(f[::2, ::2, :3]) for f in frames]
        buffer = io.BytesIO()
        imageio.mimwrite(buffer, small, format="GIF", duration=1000 / fps, loop=0)
        h, w = small[0].shape[:2]
        image = Summary.Image(height=h, width=w, colorspace=3, encoded_image_string=buffer.getvalue())
        self.writer.summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def episode(self, episodic_return: float, length: int, step: int) -> None:
        """Log a finished episode's return and length."""
        self.scalars({"charts/episodic_return": episodic_return, "charts/episodic_length": length}, step)
        self.bar.set_postfix(ret=f"{episodic_return:.3g}", refresh=False)

    def step(self, step: int) -> None:
        """Advance the progress bar to ``step`` and log ``charts/SPS`` about once per interval."""
        if step > self._step:
            self.bar.update(step - self._step)
            self._step = step
        now = time.perf_counter()
        if now - self._sps_t >= self._sps_interval:
            self.scalar("charts/SPS", (step - self._sps_step) / (now - self._sps_t), step)
            self._sps_t, self._sps_step = now, step
        if self.writer is not None:
            self.writer.flush_if_due()

    def flush(self) -> None:
        """Hand every event logged so far to the operating system, so that a killed process loses none of them."""
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        """Close the progress bar and the TensorBoard file (the trackers end with :meth:`finish_trackers`)."""
        self.bar.close()
        if self.writer is not None:
            self.writer.close()

    def finish_trackers(self, summary: Mapping[str, Any] | None) -> None:
        """End the trackers' runs, handing them ``summary.json`` (None: the run stopped before it)."""
        trackers, self.trackers = self.trackers, []
        for tracker in trackers:
            tracker.finish(summary)


def wait_for_a_later_second(run_dir: Path) -> None:
    """Return once the clock is past the second in which ``run_dir``'s newest event file was created. TensorBoard
    reads a directory's event files in name order, and a name starts with that second; a file of the same second
    can sort first (its writer counter has fewer digits: ``….10`` before ``….9``), and the resumed run's purge of
    the interrupted run's last steps would then meet them too late: the interrupted run's whole curve was lost."""
    stamps = [int(part) for p in run_dir.glob("events.out.tfevents.*") if (part := p.name.split(".")[3]).isdigit()]
    while stamps and time.time() < max(stamps) + 1:
        time.sleep(0.02)
