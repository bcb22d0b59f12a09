"""Run logging: TensorBoard scalars with the tags shared by every agent (ARCHITECTURE.md, "Logging"; the x-axis
is env steps), the same scalars to any experiment trackers (``rlzoo/trackers.py``) and a console progress bar."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from rlzoo.trackers import Tracker


class RunLogger:
    """Writes TensorBoard scalars into ``run_dir`` and drives a progress bar (steps, return, steps/s).

    ``RunLogger()`` with no directory and no progress is a silent logger that only remembers the
    latest value of each tag (``last``), which is what library calls of ``learn`` get by default.
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
        self.writer = None
        if self.run_dir is not None and tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # on resume, TensorBoard drops what the interrupted run logged after its checkpoint (steps > start_step;
            # everything at start_step itself was logged before that checkpoint was written)
            purge = start_step + 1 if start_step > 0 else None
            if purge is not None:
                wait_for_a_later_second(self.run_dir)
            self.writer = SummaryWriter(log_dir=str(self.run_dir), flush_secs=10, purge_step=purge)
        show = sys.stderr.isatty() if progress is None else progress
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", disable=not show, dynamic_ncols=True)
        self.last: dict[str, float] = {}
        self._sps_interval = sps_interval_s
        self._sps_t = time.perf_counter()
        self._sps_step = start_step
        self._step = start_step

    def scalar(self, tag: str, value: float, step: int) -> None:
        """Log one scalar against env step ``step``."""
        value = float(value)
        self.last[tag] = value
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)
        for tracker in self.trackers:
            tracker.scalar(tag, value, step)

    def text(self, tag: str, text: str, step: int) -> None:
        """Log a text sample (e.g. completions) against env step ``step``."""
        if self.writer is not None:
            self.writer.add_text(tag, text, step)

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
        # SummaryWriter.add_video's own route to the file (it would encode with moviepy)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)

    def episode(self, episodic_return: float, length: int, step: int) -> None:
        """Log a finished episode's return and length."""
        self.scalar("charts/episodic_return", episodic_return, step)
        self.scalar("charts/episodic_length", length, step)
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

    def close(self) -> None:
        """Close the progress bar and the TensorBoard file (the trackers end with :meth:`finish_trackers`)."""
        self.bar.close()
        if self.writer is not None:
            self.writer.flush()
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
