"""Rules for reusing a run directory: a command continues only the run it matches, and what an interrupted
write left behind is cleared before a run starts again."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path

from utils.config.run_config import FIXED_ON_RESUME, TrainConfig, config_differences, load_config
from utils.io.files import remove_temporaries

# Everything a run writes through the atomic writer (see docs: the run directory).
RUN_FILES = ("config.json", "manifest.json", "best.keras", "best.json", "last.keras", "training_log.csv",
             "training.png", "resume/latest.weights.h5", "resume/training_metadata.json", "resume/ema.npz")
log = logging.getLogger(__name__)


class RunMismatch(ValueError):
    """The run directory holds a run of other settings; nothing was written."""


def resume_command(run_dir: str | Path) -> str:
    return f"python train.py --resume {shlex.quote(str(run_dir))}"


def check_run_directory(config: TrainConfig, run_dir: Path, resuming: bool) -> None:
    """Refuse, before anything is written, to continue a run in `run_dir` whose saved config differs from `config`:
    in any setting for a plain rerun, in what the resume state depends on (`FIXED_ON_RESUME`) with `resuming`.

    Raises:
        RunMismatch listing the differing settings and the two ways on.
    """
    saved_path = run_dir / "config.json"
    if not saved_path.is_file():
        if resuming:
            raise FileNotFoundError(f"{saved_path}: no run to resume here")
        return
    saved = load_config(saved_path)
    differences = config_differences(saved, config, FIXED_ON_RESUME if resuming else None)
    if not differences:
        return
    listed = "\n  ".join(differences)
    if resuming:
        raise RunMismatch(f"{run_dir}: the model, its classes and anchors, the frozen phase, the optimizer and EMA "
                          f"cannot change on resume:\n  {listed}\nNothing was written. Start a new run with "
                          f"another --run-dir for these settings.")
    raise RunMismatch(
        f"{run_dir} holds a run with other settings:\n  {listed}\nNothing was written. Either start a new run "
        f"(the same command with another --run-dir), or continue this one with `{resume_command(run_dir)}` plus the "
        f"training flags to change (epochs, learning rate, batch size, augmentation, evaluation; not the model, "
        f"classes, anchors, frozen phase, optimizer or EMA).")


def remove_interrupted_writes(run_dir: Path) -> None:
    """Delete the temporary files that a kill during an atomic write left beside the run's files."""
    for name in RUN_FILES:
        for leftover in remove_temporaries(run_dir / name):
            log.info("removed %s, left by an interrupted write", leftover)
