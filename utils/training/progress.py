"""What a run decides as it goes, decisions that only move forward: the progressive stage reached, the epoch mosaic
closed at, where the learning-rate decay was last re-planned from, and the weight average's plan. Kept in the
resume state (`resume/progress.json`), so a resumed run continues with the same decisions instead of re-deciding
them from a different clock."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import keras

from utils.io.files import atomic_write_json

PROGRESS_FILE = "progress.json"


@dataclass
class RunProgress:
    stage: int = 0  # the progressive stage reached (0 without progressive learning)
    mosaic_closed_at: int | None = None  # the first epoch trained without mosaic and mixup, once decided
    decay_total: int | None = None  # the learning-rate decay ends here (steps), once re-planned …
    decay_anchor_step: int = 0  # … and runs from here …
    decay_anchor_progress: float = 0.0  # … at this fraction of the way (see `schedules.WarmupDecay.replan`)
    ema_momentum: float | None = None  # the weight average's momentum and ramp, fixed at the first plan
    ema_tau: float | None = None

    def save(self, folder: str | Path) -> None:
        atomic_write_json(Path(folder) / PROGRESS_FILE, asdict(self))

    @classmethod
    def load(cls, folder: str | Path, start_epoch: int) -> RunProgress:
        """The saved decisions of a resumed run (`start_epoch` > 0), else a fresh start."""
        path = Path(folder) / PROGRESS_FILE
        if not start_epoch or not path.is_file():
            return cls()
        return cls(**json.loads(path.read_text(encoding="utf-8")))


class ProgressCheckpoint(keras.callbacks.Callback):
    """Save the run's progress after every epoch (place before the resume state's own checkpoint)."""

    def __init__(self, progress: RunProgress, folder: str | Path) -> None:
        super().__init__()
        self.progress, self.folder = progress, Path(folder)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.progress.save(self.folder)
