"""Training for a wall-clock budget: after every epoch, re-estimate how many epochs still fit and move the end of
the learning-rate decay, the weight average's ramp, the close-mosaic epochs and the final evaluation there.

The budget counts wall time from the start of the first epoch: steps, evaluations, checkpoints and the switch
between phases alike. The next epoch is assumed to take as long as the last one (the first plan is made after the
second epoch: the first includes tracing the step), and training ends at the epoch boundary nearest the budget
(within half an epoch either side). An interrupted run resumes with what is left.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras

from utils.io.files import atomic_write_json

log = logging.getLogger(__name__)


@dataclass
class EpochPlan:
    """Where training ends: `end_epoch` epochs in all (the configured count, or fewer under a time budget)."""

    end_epoch: int


class TimeBudget(keras.callbacks.Callback):
    """Stop training when the next epoch would end further past `limit_seconds` than stopping falls short of it,
    re-planning after every epoch.

    `replan(end_epoch)` is called with every new plan (it moves the schedule and the weight average's ramp);
    `plan` is shared with the callbacks that act at the last epochs. One instance serves all phases of a run; its
    state (time used, last epoch's duration) is saved in `state_path` for a resumed run.
    """

    def __init__(self, limit_seconds: float, plan: EpochPlan, max_epochs: int, start_epoch: int,
                 replan: Callable[[int], None], state_path: str | Path) -> None:
        super().__init__()
        self.limit, self.plan, self.max_epochs = float(limit_seconds), plan, max_epochs
        self.replan_to, self.state_path = replan, Path(state_path)
        self.used_before, self.epoch_seconds, self.started, self.last_mark = 0.0, None, None, None
        self.exhausted = False
        self._load(start_epoch)

    @staticmethod
    def saved_state(state_path: str | Path, start_epoch: int) -> tuple[float, float] | None:
        """(seconds used, last epoch's seconds) of a run resumed after `start_epoch`; None without a state."""
        state_path = Path(state_path)
        if not start_epoch or not state_path.is_file():
            return None
        state = json.loads(state_path.read_text(encoding="utf-8"))
        # A kill between the resume state and this file leaves it one epoch off: scale the time to the epoch.
        return float(state["seconds"]) * start_epoch / max(int(state["epoch"]), 1), float(state["epoch_seconds"])

    @staticmethod
    def epochs_left(limit_seconds: float, used: float, epoch_seconds: float) -> int:
        """Epochs that fit in what is left, ending at the boundary nearest the budget."""
        return max(int((limit_seconds - used) / epoch_seconds + 0.5), 0)

    @classmethod
    def spent(cls, limit_seconds: float, state_path: str | Path, start_epoch: int) -> bool:
        """Whether a run resumed after `start_epoch` has no epoch left within `limit_seconds`."""
        state = cls.saved_state(state_path, start_epoch)
        return state is not None and cls.epochs_left(limit_seconds, *state) == 0

    def _load(self, start_epoch: int) -> None:
        state = self.saved_state(self.state_path, start_epoch)
        if state is not None:
            self.used_before, self.epoch_seconds = state
            self._replan(start_epoch)

    @property
    def used(self) -> float:
        """Seconds of the budget used so far."""
        return self.used_before + (time.monotonic() - self.started if self.started is not None else 0.0)

    def _replan(self, done: int) -> None:
        end = min(self.max_epochs, done + self.epochs_left(self.limit, self.used, self.epoch_seconds))
        if end != self.plan.end_epoch:
            self.plan.end_epoch = end
            self.replan_to(end)
        self.exhausted = end <= done

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.started is None:  # the first phase: later phases keep counting from here
            self.started = self.last_mark = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        now = time.monotonic()
        first = self.epoch_seconds is None
        self.epoch_seconds, self.last_mark = now - self.last_mark, now
        if not first or self.used >= self.limit:  # the first epoch includes tracing the step: plan from the second
            self._replan(epoch + 1)
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.state_path, {"epoch": epoch + 1, "seconds": self.used,
                                            "epoch_seconds": self.epoch_seconds})
        if self.exhausted:
            print(f"\nepoch {epoch + 1}: time budget of {self.limit / 60:.1f} min reached after "
                  f"{self.used / 60:.1f} min; stopping")
            self.model.stop_training = True
        elif self.plan.end_epoch < self.max_epochs:
            log.info("time budget: %.1f of %.1f min used, %.0f s an epoch: training ends after epoch %d",
                     self.used / 60, self.limit / 60, self.epoch_seconds, self.plan.end_epoch)
