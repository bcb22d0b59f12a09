"""Hydra callback that guards run and sweep directories before Hydra writes anything into them.

Hydra writes ``.hydra/config.yaml`` (and the rest) into the run directory before it calls the task function, so
checks made there come too late: a refused resume would already have rewritten the finished run's record. This
callback (``hydra.callbacks.run_guard`` in ``conf/config.yaml``) runs first, on the run directory as Hydra will
resolve it — however it was given (``hydra.run.dir=…``, ``++hydra.run.dir=…``, interpolations) — and:

- validates the config (a bad value is one line, and nothing is written);
- takes the run directory's lock (``rlzoo.run_lock``) and holds it for the run;
- refuses a directory holding a finished run, or an unfinished one without ``resume=true``, and a resume whose
  settings differ from the run's own (``rlzoo.train.resume_changes``);
- on resume, keeps the earlier start's ``.hydra/*.yaml`` in ``.hydra/start<k>/`` before Hydra rewrites them;
- for ``--multirun``, refuses a sweep directory that already has contents, and locks the new one.

A refusal is one ``rlzoo: config error: …`` line on stderr and exit status 2.
"""

from __future__ import annotations

import copy
import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from rlzoo import run_lock
from rlzoo.config import ConfigError
from rlzoo.distributed import launched_rank


def _directory(config: DictConfig, key: str) -> Path:
    HydraConfig.instance().set_config(config)  # what run_job does first: ${hydra:…} and ${now:…} resolve alike
    return Path(str(OmegaConf.select(config, key)))


def _task_config(config: DictConfig) -> DictConfig:
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    return task


def _refuse(err: ConfigError) -> None:
    print(f"rlzoo: config error: {err}", file=sys.stderr)
    sys.exit(2)


def _keep_earlier_record(record_dir: Path) -> None:
    """Hydra is about to rewrite ``record_dir/*.yaml`` for a resumed run: copy the earlier start's files to
    ``record_dir/start<k>/`` first, so that every start of the run stays on record."""
    files = sorted(record_dir.glob("*.yaml"))
    if files:
        earlier = record_dir / f"start{len(list(record_dir.glob('start*'))) + 1}"
        earlier.mkdir()
        for file in files:
            shutil.copy2(file, earlier / file.name)


class RunDirectoryGuard(Callback):
    """Checks and locks ``hydra.run.dir`` (``hydra.sweep.dir`` in a multirun) before Hydra writes into it."""

    def __init__(self) -> None:
        self.held: list[Path] = []  # the locked directories, released at the end of the run or multirun (paths, not
        # context managers: launchers such as joblib pickle the callbacks)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from rlzoo.train import check_run_for, claim, resolve

        run_dir = _directory(config, "hydra.run.dir")
        try:
            spec = resolve(_task_config(config))
            if launched_rank() == 0:
                claim(run_dir, spec, "hydra.run.dir")
                self.held.append(run_dir)
            else:  # ranks k > 0 of torchrun write and lock run_dir/rank<k> (in train)
                check_run_for(run_dir, spec)
        except ConfigError as err:
            _refuse(err)
        if spec.run.resume and config.hydra.output_subdir is not None:
            _keep_earlier_record(run_dir / str(config.hydra.output_subdir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = _directory(config, "hydra.sweep.dir")
        try:
            if sweep_dir.is_dir() and any(sweep_dir.iterdir()):
                raise ConfigError(f"hydra.sweep.dir={sweep_dir} already holds files (an earlier sweep?); a multirun "
                                  "writes into a new sweep directory: choose another")  # fmt: skip
            run_lock.acquire(sweep_dir, "hydra.sweep.dir")
            self.held.append(sweep_dir)
        except ConfigError as err:
            _refuse(err)

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._release()

    def _release(self) -> None:
        while self.held:
            run_lock.release(self.held.pop())
