"""`train(config)`: build data and model from a `TrainConfig`, fit its phases with callbacks, leave a complete run
directory (resumable at every epoch)."""

from __future__ import annotations

import logging
import math
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nets.detector import YoloDetector
from nets.yolo import build_yolo, freeze_backbone
from utils.config.run_config import LR_LIMITS, AugmentConfig, TrainConfig, save_config
from utils.data.annotations import check_class_ids, read_annotations
from utils.data.pipeline import build_dataset
from utils.data.sample_check import split_readable, unusable_reasons, usable_annotations
from utils.inference.loading import load_keras_detector
from utils.io.files import atomic_write_text
from utils.training.callbacks import (
    AtomicBackupAndRestore,
    CloseMosaic,
    EpochTimer,
    LastCheckpoint,
    LearningRateLog,
    MapEvaluation,
    SkippedSamplesReport,
    StageEnd,
    StopAtStepEnd,
    TrainingPlot,
    resumed_epoch,
)
from utils.training.distribute import build_on_local_batch, make_strategy, set_precision, strategy_name, worker_task
from utils.training.ema import WeightAverage, ramp_updates
from utils.training.manifest import write_manifest
from utils.training.optimizers import CoupledDecaySGD, PerVariableStepAdam
from utils.training.progress import ProgressCheckpoint, RunProgress
from utils.training.run_directory import check_run_directory, remove_interrupted_writes, resume_command
from utils.training.sample_sheet import save_sample_sheet
from utils.training.schedules import WarmupDecay, scaled_learning_rate
from utils.training.stages import Stage, multi_scale_batches, set_drop_connect, stage_end, stage_for, training_stages
from utils.training.time_budget import EpochPlan, TimeBudget

# Total steps below which an optimizer rarely converges from scratch (the efficientnet-yolo3-keras guidance).
RECOMMENDED_STEPS = {"sgd": 50_000, "adam": 15_000, "adamw": 15_000}

SAMPLE_SHEET = "augmented_samples.jpg"

log = logging.getLogger(__name__)


def build_model_for(config: TrainConfig, any_size: bool = False) -> YoloDetector:
    """The run's detector: its network with the class names, anchors and box coding of `config.model`.
    `any_size`: a network that takes inputs of any size (progressive and multi-scale training), letterboxing to
    `input_size` for inference."""
    spec = config.model
    if config.init_model:
        return detector_from(config.init_model, spec)
    input_shape = (None, None, 3) if any_size else spec.input_shape
    network = build_yolo(spec.backbone, spec.neck, spec.num_classes, input_shape=input_shape,
                         backbone_weights=config.initial_weights, neck_width=spec.neck_width,
                         neck_depth=spec.neck_depth, head=spec.head, reg_max=spec.reg_max,
                         prior_size=spec.input_size)
    anchors = () if spec.head == "decoupled" else spec.anchor_array()
    return YoloDetector.from_network(network, spec.class_names, anchors, spec.box_coding, reg_max=spec.reg_max,
                                     input_hw=(spec.input_size, spec.input_size))


def detector_from(source: str, spec) -> YoloDetector:
    """The network and weights of an existing detector (`--init-model`), checked against the run's model spec."""
    found = load_keras_detector(source)
    differences = [what for what, ours, theirs in (
        ("classes", tuple(spec.class_names), found.class_names), ("box coding", spec.box_coding,
                                                                   found.decoder.box_coding),
        ("input size", (spec.input_size, spec.input_size), found.input_hw)) if ours != theirs]
    if differences:
        raise ValueError(f"--init-model {source}: its {', '.join(differences)} differ from the run's model spec")
    network = keras.Model(found.inputs, found.outputs, name=found.name)
    return YoloDetector.from_network(network, spec.class_names, found.decoder.anchors, spec.box_coding,
                                     reg_max=found.decoder.reg_max, input_hw=found.input_hw)


def compile_detector(model: YoloDetector, config: TrainConfig, optimizer: keras.optimizers.Optimizer) -> None:
    """Compile with the run's loss settings; the v5 loss is scaled to the nominal batch the learning rate is scaled
    from (see `nets.loss_v5`), or to the batch itself when the rate is not scaled."""
    model.compile(optimizer=optimizer, loss_config=config.loss,
                  nominal_batch_size=config.nominal_batch_size or None, jit_compile=False)


def peak_learning_rate(config: TrainConfig, batch_size: int | None = None) -> float:
    """The run's peak rate: `learning_rate` at the nominal batch, scaled to `batch_size` (default: the run's)
    within the limits."""
    limits = config.lr_limits or LR_LIMITS[config.optimizer]
    return scaled_learning_rate(config.learning_rate, batch_size or config.batch_size, config.nominal_batch_size,
                                limits)


def ema_momentum(config: TrainConfig, total_steps: int) -> float:
    """The given EMA momentum, else one whose average spans about the last tenth of training (1 − 10 / steps),
    within [0.99, 0.9999]."""
    if config.ema_momentum is not None:
        return config.ema_momentum
    return min(max(1.0 - 10.0 / max(total_steps, 1), 0.99), 0.9999)


def make_schedule(config: TrainConfig, total_steps: int, warmup_steps: int, frozen_steps: int = 0,
                  frozen_batch_size: int | None = None) -> WarmupDecay:
    """Warmup then cosine or step decay per step; the first `frozen_steps` (a frozen phase) run at the rate
    scaled to `frozen_batch_size`."""
    total = max(1, total_steps)
    peak = peak_learning_rate(config)
    frozen_scale = peak_learning_rate(config, frozen_batch_size) / peak if frozen_steps else 1.0
    return WarmupDecay(peak, total, min(warmup_steps, total - 1), config.min_learning_rate_ratio, config.lr_decay,
                       first_phase_steps=frozen_steps, first_phase_scale=frozen_scale)


def optimizer_with(config: TrainConfig, schedule: WarmupDecay) -> keras.optimizers.Optimizer:
    """SGD (Nesterov, weight decay in the gradient as YOLOv5's) / Adam / AdamW (decoupled decay; both with
    per-variable steps, right for variables unfrozen later) on `schedule`, with optional gradient clipping; weight
    decay on kernels only (not BatchNorm or biases)."""
    common = {"learning_rate": schedule, "global_clipnorm": config.clip_norm}
    if config.optimizer == "sgd":
        optimizer = CoupledDecaySGD(momentum=config.momentum, nesterov=True, weight_decay=config.weight_decay or None,
                                    **common)
    else:  # adam: no weight decay; adamw: decoupled
        optimizer = PerVariableStepAdam(beta_1=config.momentum, **common,
                                        weight_decay=config.weight_decay if config.optimizer == "adamw" else None)
    if optimizer.weight_decay:
        optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def make_optimizer(config: TrainConfig, total_steps: int, warmup_steps: int, frozen_steps: int = 0,
                   frozen_batch_size: int | None = None) -> keras.optimizers.Optimizer:
    """The run's optimizer on its schedule (`make_schedule`, `optimizer_with`)."""
    return optimizer_with(config, make_schedule(config, total_steps, warmup_steps, frozen_steps, frozen_batch_size))


def warn_if_too_short(config: TrainConfig, total_steps: int) -> None:
    """Warn when a from-scratch run plans far fewer steps than its optimizer usually needs (not for fine-tuning
    or a time budget, where the length is chosen otherwise)."""
    wanted = RECOMMENDED_STEPS[config.optimizer]
    if not config.pretrained and config.time_limit is None and total_steps < wanted // 2:
        log.warning("%d training steps planned over %d epochs; %s usually needs about %d from scratch: consider "
                    "about %d epochs, or pretrained backbone weights", total_steps, config.epochs, config.optimizer,
                    wanted, math.ceil(wanted * config.epochs / total_steps))


def keep_log_rows_before(csv_path: Path, epoch: int) -> None:
    """On resume, drop CSV rows of epochs the resume state does not hold (written just before a kill, or the
    epoch that went NaN), so the log continues without duplicates."""
    if not csv_path.is_file():
        return
    lines = csv_path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if line.strip() and int(float(line.split(",")[0])) < epoch]
    if len(kept) != len(lines):
        atomic_write_text(csv_path, "".join(kept))


def warn_about_box_limit(annotations: list, max_boxes: int, source: str) -> int:
    """Warn when images have more boxes than the padded targets hold (the rest would train as background);
    returns how many boxes are beyond the limit."""
    counts = np.array([len(a.boxes) for a in annotations])
    beyond = int(np.maximum(counts - max_boxes, 0).sum())
    if beyond:
        log.warning("%s: %d images have more than --max-boxes %d boxes (up to %d); %d boxes beyond the limit are "
                    "left out of training and would count as background: raise --max-boxes to at least %d",
                    source, int((counts > max_boxes).sum()), max_boxes, int(counts.max()), beyond, int(counts.max()))
    return beyond


def load_training_data(config: TrainConfig):
    """Training annotations (bad samples skipped and counted), readable validation annotations, the skip report."""
    train_annotations, train_problems = read_annotations(config.train, strict=False)  # strict: all listed below
    val_annotations, val_problems = read_annotations(config.val, strict=False)
    for listed, source in ((train_annotations, config.train), (val_annotations, config.val)):
        check_class_ids(listed, config.model.num_classes, source)
    warn_about_box_limit(train_annotations, config.max_boxes, config.train)
    train_annotations, skipped = usable_annotations(train_annotations, train_problems, config.strict)
    if val_problems and config.strict:
        raise ValueError("--strict: unparsable validation lines:\n  " + "\n  ".join(val_problems))
    for problem in val_problems:
        log.warning("skipping unparsable validation line: %s", problem)
    val_annotations, val_missing, val_unreadable = split_readable(val_annotations)  # once, not every evaluation
    for reason in unusable_reasons(val_missing, val_unreadable):
        log.warning("skipping validation image %s", reason)
    if not val_annotations:
        raise ValueError(f"{config.val}: none of the annotated images exist and decode")
    return train_annotations, val_annotations, skipped


def completed_run(config: TrainConfig, run_dir: Path, start_epoch: int) -> str | None:
    """What to tell a user who resumes a run with nothing left to train (every epoch done, or its time budget
    spent), with how to extend it; None when there is training left."""
    done = start_epoch >= config.epochs
    spent = config.time_limit is not None and start_epoch > 0 and TimeBudget.spent(
        config.time_limit * 60, run_dir / "resume" / "time_budget.json", start_epoch)
    if not (done or spent):
        return None
    why = (f"all {config.epochs} epochs are trained" if done else
           f"its time budget of {config.time_limit:g} minutes is spent after {start_epoch} epochs")
    extend = f"--epochs N (more than {config.epochs})" if done else "--time-limit M (more minutes in all)"
    return f"{run_dir}: complete ({why}); nothing to train. To train longer: {resume_command(run_dir)} {extend}"


@dataclass(frozen=True)
class Phase:
    """Epochs [first_epoch, end_epoch) trained at one batch size, with the backbone frozen or not."""

    first_epoch: int
    end_epoch: int
    batch_size: int
    frozen: bool


def training_phases(config: TrainConfig) -> list[Phase]:
    """A frozen-backbone phase (`freeze_epochs` at `freeze_batch_size`), then the rest at `batch_size`."""
    frozen_end = min(config.freeze_epochs, config.epochs)
    phases = [Phase(0, frozen_end, config.freeze_batch_size or config.batch_size, True)] if frozen_end else []
    if config.epochs > frozen_end:
        phases.append(Phase(frozen_end, config.epochs, config.batch_size, config.freeze_backbone))
    return phases


def steps_until(phases: list[Phase], steps: list[int], end_epoch: int) -> int:
    """Optimizer steps of the phases' epochs before `end_epoch`."""
    return sum(max(min(phase.end_epoch, end_epoch) - phase.first_epoch, 0) * n
               for phase, n in zip(phases, steps, strict=True))


def change_markers(config: TrainConfig, progress: RunProgress, stages: list[Stage], plan: EpochPlan
                   ) -> dict[str, int]:
    """The epochs where the run changed, for the training plot: the backbone unfrozen, mosaic off, each stage."""
    markers = {}
    if config.freeze_epochs and not config.freeze_backbone:
        markers["backbone unfrozen"] = config.freeze_epochs
    if progress.mosaic_closed_at is not None:
        markers["mosaic and mixup off"] = progress.mosaic_closed_at
    for stage in stages[1:]:
        markers[f"stage {stage.index + 1}: {stage.input_size}²"] = stage_end(stages, stage.index - 1, plan.end_epoch)
    return markers


def write_sample_sheet(data: tf.data.Dataset, config: TrainConfig, augment: AugmentConfig, run_dir: Path,
                       dropped_boxes: tf.Variable) -> None:
    """`augmented_samples.jpg`: up to eight samples of the run's first batch, as augmentation made them."""
    counted = int(dropped_boxes.numpy())
    images, boxes = next(iter(data.take(1)))
    dropped_boxes.assign(counted)  # this look is not training: its cut boxes are not counted
    save_sample_sheet(images.numpy()[:8], boxes.numpy()[:8], list(config.model.class_names), augment,
                      run_dir / SAMPLE_SHEET)


def train_callbacks(config: TrainConfig, run_dir: Path, map_evaluation: MapEvaluation, skipped,
                    mosaic_switch: tf.Variable, plan: EpochPlan, progress: RunProgress, stages: list[Stage],
                    average: WeightAverage | None = None, budget: TimeBudget | None = None,
                    dropped_boxes: tf.Variable | None = None) -> list[keras.callbacks.Callback]:
    csv_path = run_dir / "training_log.csv"
    callbacks = [StopAtStepEnd(), EpochTimer()]  # first: Ctrl-C between steps, the time of the steps alone
    callbacks += [budget] if budget else []  # then the budget: the epochs after it see this epoch's new plan
    callbacks += [StageEnd(stages, plan, progress)] if len(stages) > 1 else []
    callbacks += [CloseMosaic(mosaic_switch, plan, config.close_mosaic, progress)] if (
        config.augment.mosaic or config.augment.mixup) else []
    callbacks += [average] if average else []  # updated after every batch, before any epoch-end callback reads it
    return callbacks + [
        keras.callbacks.TerminateOnNaN(),
        SkippedSamplesReport(skipped, dropped_boxes, config.max_boxes),
        map_evaluation,
        LearningRateLog(),
        keras.callbacks.CSVLogger(str(csv_path), append=True),
        LastCheckpoint(run_dir / "last.keras", average),
        ProgressCheckpoint(progress, run_dir / "resume"),
        # After the CSV row: a kill between the two repeats that epoch, and the row is dropped on resume.
        AtomicBackupAndRestore(str(run_dir / "resume"), average=average, delete_checkpoint=False),
        TrainingPlot(csv_path, run_dir / "training.png", lambda: change_markers(config, progress, stages, plan)),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard"), write_graph=False, profile_batch=0),
    ]


def train(config: TrainConfig, strategy: tf.distribute.Strategy | None = None, resume: bool = False) -> dict:
    """Train a detector and write the run directory (docs/design.md). Returns the final validation metrics.

    Nothing is written before the config and the data have been checked. A `run_dir` that already holds a run
    is continued only when it is that run: with `resume`, its model, frozen phase, optimizer and EMA must match
    (training settings may change); without, every setting must (`run_directory.check_run_directory`).

    Phases (`training_phases`) run in one loop with one optimizer and one per-step schedule across them: the
    optimizer is built on every variable any phase trains, so its state has the same shape in every phase and a
    resume state loads in any of them. A resumed run continues after its last completed epoch, with weights,
    optimizer, weight average and schedule state, and the data order and augmentation of that epoch.
    `strategy`: made from `config.strategy` when not given (a multi-worker one must exist before any op runs).
    """
    strategy = strategy or make_strategy(config.strategy)
    if config.time_limit is not None and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise ValueError("--time-limit with several workers: each would measure its own clock and they could stop "
                         "at different epochs; give --epochs instead")
    chief, worker = worker_task()
    if chief:
        check_run_directory(config, Path(config.run_dir), resume)
    # Only the chief writes the run directory; other workers write the same files to a scratch folder.
    run_dir = Path(config.run_dir) if chief else Path(tempfile.mkdtemp(prefix=f"effyolo_worker{worker}_"))
    start_epoch = resumed_epoch(run_dir / "resume")
    finished = completed_run(config, run_dir, start_epoch)
    if finished:
        print(finished)
        return {}
    keras.utils.set_random_seed(config.seed)
    precision = set_precision(config.mixed_precision)
    train_annotations, val_annotations, skipped = load_training_data(config)
    spec = config.model
    phases = training_phases(config)
    steps = [len(train_annotations) // phase.batch_size for phase in phases]
    if min(steps) == 0:
        raise ValueError(f"{config.train}: {len(train_annotations)} usable images is fewer than one batch of "
                         f"{max(phase.batch_size for phase in phases)}")
    total_steps = steps_until(phases, steps, config.epochs)
    warn_if_too_short(config, total_steps)
    frozen_steps = (phases[0].end_epoch * steps[0]) if config.freeze_epochs else 0
    stages = training_stages(config)
    with strategy.scope():  # built before anything is written: a failed weights load leaves no run behind
        model = build_model_for(config, any_size=len(stages) > 1 or config.multi_scale)
        schedule = make_schedule(config, total_steps, int(config.warmup_epochs * steps[0]), frozen_steps,
                                 phases[0].batch_size)
        optimizer = optimizer_with(config, schedule)
        optimizer.build(model.trainable_variables)
    run_dir.mkdir(parents=True, exist_ok=True)
    remove_interrupted_writes(run_dir)
    save_config(config, run_dir / "config.json")
    keep_log_rows_before(run_dir / "training_log.csv", start_epoch)
    if start_epoch:
        print(f"resuming {run_dir} after epoch {start_epoch} of {config.epochs}")
    build_on_local_batch(model, strategy)  # once: it wraps the model's own methods, which compile leaves alone
    average = WeightAverage(ema_momentum(config, total_steps), ramp_updates(total_steps)) if config.ema else None
    progress = RunProgress.load(run_dir / "resume", start_epoch)
    if progress.decay_total is not None:
        schedule.restore(progress.decay_total, (progress.decay_anchor_step, progress.decay_anchor_progress))
    if average is not None and progress.ema_momentum is not None:
        average.replan(progress.ema_momentum, progress.ema_tau)
    write_manifest(config, run_dir / "manifest.json", {
        "peak_learning_rate": peak_learning_rate(config), "steps_per_epoch": steps[-1], "total_steps": total_steps,
        "phases": [{**asdict(phase), "steps_per_epoch": n,
                    "peak_learning_rate": peak_learning_rate(config, phase.batch_size)}
                   for phase, n in zip(phases, steps, strict=True)],
        "stages": [{"input_size": stage.input_size, "mosaic": stage.augment.mosaic, "mixup": stage.augment.mixup,
                    "scale": [stage.augment.scale_min, stage.augment.scale_max],
                    "drop_connect_scale": stage.drop_connect_scale} for stage in stages],
        "ema_momentum": average.momentum if average else None, "ema_ramp_updates": average.tau if average else None,
        "precision": precision, "replicas": strategy.num_replicas_in_sync, "strategy": strategy_name(strategy),
        "start_epoch": start_epoch})
    plan = EpochPlan(config.epochs)
    budget = None
    if config.time_limit is not None:
        def replan(end_epoch: int) -> None:
            """A new end: the decay continues smoothly to it; the weight average keeps its first plan."""
            planned = steps_until(phases, steps, end_epoch)
            schedule.replan(max(planned, 1), at_step=int(optimizer.iterations.numpy()))
            progress.decay_total = schedule.total_steps
            progress.decay_anchor_step, progress.decay_anchor_progress = schedule.anchor
            if average is not None and config.ema_momentum is None and progress.ema_momentum is None:
                average.replan(ema_momentum(config, planned), ramp_updates(planned))
                progress.ema_momentum, progress.ema_tau = average.momentum, average.tau

        budget = TimeBudget(config.time_limit * 60, plan, config.epochs, start_epoch, replan,
                            run_dir / "resume" / "time_budget.json")
    map_evaluation = MapEvaluation(val_annotations, run_dir / "best.keras", period=config.eval_period, plan=plan,
                                   batch_size=config.eval_batch_size, patience=config.patience, average=average)
    mosaic_switch = tf.Variable(1.0, trainable=False, name="mosaic_enabled")
    dropped_boxes = tf.Variable(0, trainable=False, dtype=tf.int64, name="dropped_boxes")
    epoch, compiled_for = start_epoch, None
    while epoch < plan.end_epoch and not map_evaluation.stopped and not (budget and budget.exhausted):
        # A segment: epochs of one phase (frozen or not) and one stage (input size, augmentation), one fit.
        index = next(i for i, phase in enumerate(phases) if phase.first_epoch <= epoch < phase.end_epoch)
        phase, steps_per_epoch = phases[index], steps[index]
        progress.stage = stage_for(stages, epoch, plan.end_epoch, progress.stage)
        stage = stages[progress.stage]
        end = min(phase.end_epoch, stage_end(stages, stage.index, plan.end_epoch))
        if compiled_for != (index, stage.index):
            freeze_backbone(model, phase.frozen, config.freeze_backbone_bn)
            set_drop_connect(model, stage.drop_connect_scale)
            with strategy.scope():
                compile_detector(model, config, optimizer)
            compiled_for = (index, stage.index)
        data = build_dataset(train_annotations, (stage.input_size, stage.input_size), phase.batch_size,
                             training=True, augment=stage.augment, seed=config.seed, max_boxes=config.max_boxes,
                             cache=config.cache, mosaic_enabled=mosaic_switch, start_epoch=epoch,
                             dropped_boxes=dropped_boxes)
        if config.multi_scale:
            data = multi_scale_batches(data, spec.input_size, config.seed, first_batch=epoch * steps_per_epoch)
        if epoch == 0:
            write_sample_sheet(data, config, stage.augment, run_dir, dropped_boxes)
        if len(phases) > 1 or len(stages) > 1:
            print(f"epochs {epoch + 1}–{end}: batch {phase.batch_size}, backbone "
                  f"{'frozen' if phase.frozen else 'trained'}"
                  + (f", stage {stage.index + 1} of {len(stages)}: {stage.input_size}²" if len(stages) > 1 else ""))
        history = model.fit(data, initial_epoch=epoch, epochs=end, steps_per_epoch=steps_per_epoch, shuffle=False,
                            callbacks=train_callbacks(config, run_dir, map_evaluation, skipped, mosaic_switch, plan,
                                                      progress, stages, average, budget, dropped_boxes),
                            verbose=1 if sys.stdout.isatty() else 2)  # a progress bar on a terminal
        losses = history.history.get("loss", [])
        if losses and not math.isfinite(losses[-1]):
            done = resumed_epoch(run_dir / "resume")
            raise FloatingPointError(
                f"training loss became {losses[-1]} in epoch {done + 1}; stopped. The state after epoch {done} is "
                f"saved in {run_dir / 'resume'}: fix the cause (a lower --lr, --clip-norm, the data) and continue "
                f"with --resume {run_dir} [changed flags]")
        if not history.epoch:  # nothing trained (the plan ended at this epoch)
            break
        epoch = history.epoch[-1] + 1
    return map_evaluation.last_metrics or {}
