"""Training configuration, learning-rate schedule, optimizers, EMA, early stopping and the manifest (no fitting)."""

import hashlib
import json
import math

import numpy as np
import pytest

import train
from tests.conftest import tiny_detector
from utils.config.run_config import load_config, save_config, to_dict


def config_from(tmp_path, *flags):
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\n")
    return train.resolve_config(["--train", "t.txt", "--val", "v.txt", "--classes", str(classes),
                                 "--run-dir", str(tmp_path / "run"), *flags])[0]


def test_config_round_trips_through_json_and_yaml_and_flags_override_it(tmp_path):
    import yaml

    config = config_from(tmp_path, "--optimizer", "sgd", "--lr-decay", "step", "--ema", "--clip-norm", "10",
                         "--lr-limits", "1e-4", "1e-2", "--patience", "5", "--mosaic", "0.5", "--phi", "1")
    assert (config.optimizer, config.learning_rate, config.momentum) == ("sgd", 1e-2, 0.937)  # sgd defaults
    save_config(config, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == config
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(to_dict(config)))
    assert load_config(tmp_path / "config.yaml") == config
    overridden = train.resolve_config(["--config", str(tmp_path / "config.yaml"), "--epochs", "7", "--hsv-h", "0",
                                       "--no-ema", "--optimizer", "adam"])[0]
    assert (overridden.epochs, overridden.augment.hsv_h, overridden.ema) == (7, 0.0, False)
    # A new optimizer without --lr takes that optimizer's default rate and momentum.
    assert (overridden.optimizer, overridden.learning_rate, overridden.momentum) == ("adam", 8e-3, 0.9)
    assert overridden.augment.mosaic == 0.5 and overridden.model == config.model and overridden.patience == 5


def test_a_config_file_takes_new_classes_and_anchor_files(tmp_path):
    from utils.config.run_config import DEFAULT_ANCHORS_FILE

    save_config(config_from(tmp_path), tmp_path / "config.json")
    (tmp_path / "three.txt").write_text("x\ny\nz\n")
    changed = train.resolve_config(["--config", str(tmp_path / "config.json"), "--classes", str(tmp_path / "three.txt"),
                                    "--anchors", str(DEFAULT_ANCHORS_FILE), "--input-size", "320"])[0]
    # The 416-pixel file scaled to 320: (10, 13) → (7.69, 10.0).
    assert changed.model.class_names == ("x", "y", "z") and changed.model.anchors[0] == (7.69, 10.0)


def test_resume_needs_only_the_run_dir_and_keeps_the_model(tmp_path):
    config = config_from(tmp_path, "--epochs", "3")
    run = tmp_path / "run"
    run.mkdir()
    save_config(config, run / "config.json")
    resumed, check_anchors = train.resolve_config(["--resume", str(run)])
    assert resumed == config and not check_anchors
    assert train.resolve_config(["--resume", str(run), "--clip-norm", "5"])[0].clip_norm == 5
    with pytest.raises(ValueError, match="cannot change on resume .--input-size"):
        train.resolve_config(["--resume", str(run), "--input-size", "320"])


def test_pretrained_weights_default_to_the_fine_tuning_recipe_and_explicit_flags_win(tmp_path):
    from utils.config.run_config import FINE_TUNE_FREEZE_EPOCHS, ModelSpec, from_dict

    default = config_from(tmp_path)  # Lite0, whose ImageNet weights are published: the fine-tuning recipe
    assert (default.model.backbone, default.backbone_weights, default.initial_weights) == (
        "efficientnet-lite0", "imagenet", "imagenet")
    assert (default.freeze_epochs, default.ema, default.freeze_backbone_bn) == (FINE_TUNE_FREEZE_EPOCHS, True, True)
    assert FINE_TUNE_FREEZE_EPOCHS == 3
    scratch = config_from(tmp_path, "--backbone-weights", "none")
    assert (scratch.backbone_weights, scratch.initial_weights, scratch.freeze_epochs, scratch.ema,
            scratch.freeze_backbone_bn) == ("none", None, 0, False, False)
    unpublished = config_from(tmp_path, "--backbone", "cspdarknet-n")  # no ImageNet weights: from scratch
    assert (unpublished.backbone_weights, unpublished.freeze_epochs, unpublished.ema) == ("none", 0, False)
    assert config_from(tmp_path, "--phi", "3").backbone_weights == "imagenet"
    explicit = config_from(tmp_path, "--freeze-epochs", "0", "--no-ema", "--no-freeze-backbone-bn")
    assert (explicit.freeze_epochs, explicit.ema, explicit.freeze_backbone_bn) == (0, False, False)
    save_config(default, tmp_path / "tuned.json")  # saved resolved: a resume never re-derives them
    saved = json.loads((tmp_path / "tuned.json").read_text())
    assert (saved["backbone_weights"], saved["freeze_epochs"], saved["ema"], saved["freeze_backbone_bn"]) == (
        "imagenet", 3, True, True)
    # An earlier version saved a random init as null: it stays a random init.
    old = {**saved, "backbone_weights": None, "freeze_epochs": 0, "ema": False, "freeze_backbone_bn": False}
    assert from_dict(old).backbone_weights == "none"
    # Without anchors, a model spec takes the default file's, scaled to its input size.
    assert ModelSpec(class_names=("a",), input_size=320).anchors[0] == (7.69, 10.0)
    with pytest.raises(ValueError, match="time_limit: must be above 0"):
        config_from(tmp_path, "--time-limit", "0")


def test_missing_required_flags_are_named():
    with pytest.raises(ValueError, match="--train, --val, --classes, --run-dir required"):
        train.resolve_config([])


def test_learning_rate_is_scaled_by_batch_within_limits():
    from utils.training.schedules import scaled_learning_rate

    assert scaled_learning_rate(8e-3, 8, 64, (1e-4, 4e-3)) == pytest.approx(1e-3)
    assert scaled_learning_rate(8e-3, 256, 64, (1e-4, 4e-3)) == pytest.approx(4e-3)  # 3.2e-2 clipped
    assert scaled_learning_rate(1e-3, 2, 64, (1e-4, 4e-3)) == pytest.approx(1e-4)  # 3.1e-5 clipped
    assert scaled_learning_rate(2e-3, 8, 0, (1e-4, 4e-3)) == 2e-3  # scaling off


def test_warmup_then_cosine_and_step_decay_values():
    from utils.training.schedules import WarmupDecay

    cosine = WarmupDecay(0.01, total_steps=110, warmup_steps=10, final_ratio=0.01)
    # warmup 1e-4 → 1e-2 linearly; cosine from 1e-2 to 1e-4 over 100 steps: halfway (step 60) is the mean.
    expected = {0: 1e-4, 5: 0.01 * (0.01 + 0.99 * 0.5), 10: 0.01, 60: (0.01 + 1e-4) / 2, 110: 1e-4, 500: 1e-4}
    for step, value in expected.items():
        assert float(cosine(step)) == pytest.approx(value, rel=1e-5), step
    step = WarmupDecay(0.01, total_steps=100, warmup_steps=0, final_ratio=0.01, decay="step")
    # ten levels from 1e-2 to 1e-4: level k = 1e-2 · 0.01^(k / 9), each 10 steps long.
    for at, level in ((0, 0), (9, 0), (10, 1), (55, 5), (99, 9), (100, 9)):
        assert float(step(at)) == pytest.approx(0.01 * 0.01 ** (level / 9), rel=1e-5), at
    assert WarmupDecay.from_config(step.get_config()).get_config() == step.get_config()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_weight_decay_reaches_kernels_only(name, tmp_path):
    import dataclasses

    import keras

    from utils.training.optimizers import CoupledDecaySGD, PerVariableStepAdam
    from utils.training.trainer import make_optimizer

    config = dataclasses.replace(config_from(tmp_path, "--optimizer", name, "--warmup-epochs", "0",
                                             "--nominal-batch-size", "0", "--lr", "0.1", "--weight-decay", "0.5"),
                                 epochs=1)
    optimizer = make_optimizer(config, total_steps=10, warmup_steps=0)
    assert isinstance(optimizer, {"sgd": CoupledDecaySGD, "adam": PerVariableStepAdam,
                                  "adamw": PerVariableStepAdam}[name])
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Dense(2)(inputs)))
    for variable in model.trainable_variables:
        variable.assign(np.ones(variable.shape, np.float32))
    optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in model.trainable_variables])
    after = {v.path.split("/")[-1]: float(np.asarray(v).ravel()[0]) for v in model.trainable_variables}
    # Zero gradients, lr 0.1, wd 0.5. AdamW: decoupled, w ← w − lr · wd · w. SGD (YOLOv5's): g = wd · w = 0.5 enters
    # Nesterov momentum 0.937: v = −lr · g, w ← w + m · v − lr · g.
    decayed = {"adam": 1.0, "adamw": 1 - 0.1 * 0.5, "sgd": 1 - 0.1 * 0.5 * (1 + 0.937)}[name]
    assert after["kernel"] == pytest.approx(decayed, rel=1e-5)
    assert after["bias"] == after["gamma"] == after["beta"] == 1.0
    assert optimizer.nesterov if name == "sgd" else optimizer.beta_1 == 0.9


def test_adam_counts_steps_per_variable_so_a_late_unfrozen_variable_starts_as_a_fresh_adam():
    import keras

    from utils.training.optimizers import PerVariableStepAdam

    gradient = np.array([0.5, -2.0, 3.0, -0.01], np.float32)

    def train(optimizer, steps: int) -> np.ndarray:
        weights = keras.Variable(np.ones(4, np.float32))
        for _ in range(steps):
            optimizer.apply([gradient], [weights])
        return np.asarray(weights)

    # Every variable from the first step: exactly Keras' AdamW.
    np.testing.assert_allclose(train(PerVariableStepAdam(1e-2, weight_decay=0.1), 5),
                               train(keras.optimizers.AdamW(1e-2, weight_decay=0.1), 5), rtol=1e-6)

    def first_update_after_a_frozen_phase(optimizer) -> np.ndarray:
        early, late = keras.Variable(np.ones(4, np.float32)), keras.Variable(np.ones(4, np.float32))
        optimizer.build([early, late])
        optimizer.iterations.assign(5000)  # a long frozen phase trained `early` only
        optimizer.apply([gradient], [late])
        return 1.0 - np.asarray(late)

    # A fresh Adam's first step moves each weight by lr · sign(g) (Keras adds ε to the uncorrected √v, which shows
    # on the smallest gradient); the shared count leaves the zero moments uncorrected: (1 − β₁) / √(1 − β₂) ≈ 3.2×.
    ours = first_update_after_a_frozen_phase(PerVariableStepAdam(1e-2))
    np.testing.assert_allclose(ours, 1e-2 * np.sign(gradient), rtol=1e-3)
    shared = first_update_after_a_frozen_phase(keras.optimizers.Adam(1e-2))
    np.testing.assert_allclose(shared, ours * np.sqrt(1 - 0.999 ** 5001) / (1 - 0.9 ** 5001) * 0.1 / np.sqrt(0.001),
                               rtol=1e-4)


def test_weight_average_ramps_in_covers_batchnorm_statistics_and_swaps_back(tmp_path):
    import keras

    from utils.training.ema import WeightAverage

    inputs = keras.Input((2,))
    dense = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
    model = keras.Model(inputs, keras.layers.BatchNormalization()(dense(inputs)))
    average = WeightAverage(momentum=0.9, tau=2.0)
    average.set_model(model)
    kernel, moving_mean = dense.kernel, model.layers[-1].moving_mean
    expected_kernel, expected_mean = 0.0, 0.0
    for update in range(1, 5):  # the weights move; after each "batch" the average follows with the ramped decay
        kernel.assign(np.full((2, 1), float(update), np.float32))
        moving_mean.assign(np.full((1,), 10.0 * update, np.float32))
        average.on_train_batch_end(update - 1)
        decay = 0.9 * (1 - math.exp(-update / 2.0))  # 0.9 · (1 − e^(−n/2)): 0.354, 0.569, 0.699, 0.778
        expected_kernel = decay * (expected_kernel if update > 1 else 1.0) + (1 - decay) * update
        expected_mean = decay * (expected_mean if update > 1 else 10.0) + (1 - decay) * 10.0 * update
    with average.swapped_in():
        assert float(kernel.numpy()[0, 0]) == pytest.approx(expected_kernel, rel=1e-5)
        assert float(moving_mean.numpy()[0]) == pytest.approx(expected_mean, rel=1e-5)  # BatchNorm statistics too
    assert float(kernel.numpy()[0, 0]) == 4.0 and float(moving_mean.numpy()[0]) == 40.0  # trained values back
    # Saved with a resume state and restored only for the same epoch.
    average.save(tmp_path / "ema.npz", epoch=3)
    restored = WeightAverage(momentum=0.9, tau=2.0)
    restored.set_model(model)
    assert not restored.load(tmp_path / "ema.npz", epoch=2)
    assert restored.load(tmp_path / "ema.npz", epoch=3) and float(restored.updates.numpy()) == 4.0
    with restored.swapped_in():
        assert float(kernel.numpy()[0, 0]) == pytest.approx(expected_kernel, rel=1e-5)


def test_weight_average_in_a_frozen_phase_keeps_frozen_weights_and_pairs_by_variable():
    """Also under a loss-scale wrapper (mixed float16 on a GPU), which an optimizer-held average would miss."""
    import keras

    from utils.training.ema import WeightAverage

    inputs = keras.Input((3,))
    frozen = keras.layers.Dense(4, name="frozen")
    head = keras.layers.Dense(2, name="head")
    model = keras.Model(inputs, head(frozen(inputs)))
    frozen.trainable = False
    model.compile(optimizer=keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1)), loss="mse")
    initial_head = np.asarray(head.kernel).copy()
    average = WeightAverage(momentum=0.5, tau=1.0)
    before = [np.asarray(v).copy() for v in frozen.weights]
    x, y = np.ones((8, 3), np.float32), np.full((8, 2), 3.0, np.float32)
    model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[average])
    with average.swapped_in():
        for variable, value in zip(frozen.weights, before, strict=True):
            np.testing.assert_array_equal(np.asarray(variable), value)  # a frozen weight's average is itself
        assert [tuple(v.shape) for v in head.weights] == [(4, 2), (2,)]
        averaged_head = np.asarray(head.kernel).copy()
    assert float(average.updates.numpy()) == 4.0  # 2 epochs × 2 batches
    assert not np.allclose(averaged_head, initial_head) and not np.allclose(averaged_head, np.asarray(head.kernel))


def test_patience_stops_after_epochs_without_a_better_map(tmp_path, monkeypatch):
    import keras

    import utils.training.callbacks as callbacks

    scores = iter([0.2, 0.5, 0.4, 0.45, 0.49, 0.6])
    monkeypatch.setattr(callbacks, "evaluate_model", lambda *a, **k: {"map50": next(scores), "map50_95": 0.1})
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    evaluation = callbacks.MapEvaluation([], tmp_path / "best.keras", patience=3)
    model.stop_training = False  # as model.fit sets it
    evaluation.set_model(model)
    evaluation.on_train_begin()
    stopped_at = None
    for epoch in range(6):
        evaluation.on_epoch_end(epoch, {"loss": 1.0})
        if model.stop_training:
            stopped_at = epoch
            break
    assert stopped_at == 4  # best 0.5 at epoch index 1; 0.4, 0.45, 0.49 are three epochs without a better one
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 2, "val_map50": 0.5, "val_map50_95": 0.1}
    # A resumed run reads the best back and does not replace best.keras with a worse model.
    again = callbacks.MapEvaluation([], tmp_path / "best.keras", patience=3)
    again.set_model(model)
    again.on_train_begin()
    assert (again.best, again.best_epoch) == (0.5, 1)
    # An epoch whose loss went NaN is neither evaluated nor saved.
    logs = {"loss": math.nan}
    again.on_epoch_end(5, logs)
    assert math.isnan(logs["val_map50"])


def test_manifest_records_versions_commit_config_hash_and_data(tmp_path):
    from utils.training.manifest import config_hash, write_manifest

    (tmp_path / "t.txt").write_text("a.jpg 1,2,3,4,0\nb.jpg\n")
    (tmp_path / "v.txt").write_text("c.jpg")
    config = config_from(tmp_path)
    import dataclasses

    config = dataclasses.replace(config, train=str(tmp_path / "t.txt"), val=str(tmp_path / "v.txt"))
    manifest = write_manifest(config, tmp_path / "manifest.json", {"peak_learning_rate": 1e-3})
    assert json.loads((tmp_path / "manifest.json").read_text()) == manifest
    assert manifest["config_sha256"] == config_hash(config) != config_hash(dataclasses.replace(config, epochs=1))
    assert manifest["annotations"]["train"]["lines"] == 2 and manifest["annotations"]["val"]["lines"] == 1
    assert manifest["annotations"]["train"]["sha256"] == hashlib.sha256(b"a.jpg 1,2,3,4,0\nb.jpg\n").hexdigest()
    assert manifest["packages"]["tensorflow"] and manifest["packages"]["keras"]
    assert len(manifest["git"]["commit"]) == 40 or manifest["git"]["commit"] == "unknown"


def test_phases_freeze_the_backbone_first_at_their_own_batch_size(tmp_path):
    from utils.training.trainer import Phase, training_phases

    phased = config_from(tmp_path, "--epochs", "10", "--freeze-epochs", "3", "--freeze-batch-size", "16",
                         "--batch-size", "4")
    assert training_phases(phased) == [Phase(0, 3, 16, True), Phase(3, 10, 4, False)]
    # the default (ImageNet weights) freezes 3 epochs first; from scratch, nothing is frozen
    assert training_phases(config_from(tmp_path, "--epochs", "5")) == [Phase(0, 3, 8, True), Phase(3, 5, 8, False)]
    assert training_phases(config_from(tmp_path, "--epochs", "5", "--backbone-weights", "none")) == [
        Phase(0, 5, 8, False)]
    assert training_phases(config_from(tmp_path, "--epochs", "5", "--freeze-backbone", "--freeze-epochs", "0")) == [
        Phase(0, 5, 8, True)]


def test_mixed_precision_computes_in_bfloat16_with_float32_outputs():
    import keras

    from nets.yolo import build_yolo
    from utils.training.distribute import set_precision

    try:
        assert set_precision(True) == "mixed_bfloat16"  # no GPU here
        model = build_yolo("shufflenetv2-x0.5", "yolov5", 2, input_shape=(64, 64, 3))
        outputs = model(np.zeros((1, 64, 64, 3), np.float32))
        assert [o.dtype.name for o in outputs] == ["float32"] * 3
        assert model.get_layer("backbone").compute_dtype == "bfloat16"
        assert all(v.dtype == "float32" for v in model.trainable_variables)  # float32 master weights
    finally:
        assert set_precision(False) == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_a_run_that_fails_validation_writes_nothing(shapes_voc, tmp_path):
    import voc_annotation

    lines = tmp_path / "lines"
    classes = str(shapes_voc / "classes.txt")
    assert voc_annotation.main(["--voc-root", str(shapes_voc), "--classes", classes, "--out-dir", str(lines),
                                "--val-fraction", "0.25", "--test-fraction", "0"]) == 0
    run = tmp_path / "run"
    flags = ["--train", str(lines / "train.txt"), "--val", str(lines / "val.txt"), "--classes", classes,
             "--run-dir", str(run), "--input-size", "64"]
    with pytest.raises(ValueError, match="--val"):
        train.main([f for f in flags if f not in ("--val", str(lines / "val.txt"))])
    with pytest.raises(ValueError, match="input_size: must be a multiple of 32, got 100"):
        train.main([*flags, "--input-size", "100"])
    with pytest.raises(ValueError, match="18 usable images is fewer than one batch of 64"):
        train.main([*flags, "--batch-size", "64"])
    wrong_ids = tmp_path / "wrong_ids.txt"
    wrong_ids.write_text((lines / "train.txt").read_text().replace(",2 ", ",3 ").replace(",2\n", ",3\n"))
    with pytest.raises(ValueError, match=rf"class list of 3 classes \(ids 0–2\):\n  {wrong_ids}:\d+: class id 3"):
        train.main([*flags, "--train", str(wrong_ids)])
    # Weights that cannot be loaded fail while the model is built, before the run directory is written: the
    # corrected command then starts a fresh run instead of refusing a folder of other settings.
    missing = tmp_path / "missing.weights.h5"
    with pytest.raises(FileNotFoundError, match="missing.weights.h5: backbone weights file not found"):
        train.main([*flags, "--backbone-weights", str(missing)])
    assert not run.exists()


def test_rerun_and_resume_rules_compare_the_saved_config(tmp_path):
    import dataclasses

    from utils.training.run_directory import RunMismatch, check_run_directory

    config = config_from(tmp_path, "--epochs", "3")
    run = tmp_path / "run"
    check_run_directory(config, run, resuming=False)  # a new folder: fine
    with pytest.raises(FileNotFoundError, match="no run to resume here"):
        check_run_directory(config, run, resuming=True)
    save_config(config, run / "config.json")
    check_run_directory(config, run, resuming=False)  # the same command again continues the run
    longer = dataclasses.replace(config, epochs=5)
    with pytest.raises(RunMismatch, match="epochs: 3 → 5\nNothing was written"):
        check_run_directory(longer, run, resuming=False)
    check_run_directory(longer, run, resuming=True)  # a training setting may change on resume
    other_model = dataclasses.replace(longer, model=dataclasses.replace(config.model, backbone="efficientnet-b1"))
    with pytest.raises(RunMismatch, match="cannot change on resume:\n  model.backbone: 'efficientnet-lite0' → "
                                          "'efficientnet-b1'\nNothing was written"):
        check_run_directory(other_model, run, resuming=True)


def test_images_with_more_boxes_than_max_boxes_are_counted_and_warned_about(caplog):
    import logging

    from utils.data.annotations import Annotation
    from utils.training.trainer import warn_about_box_limit

    def with_boxes(count):
        return Annotation("x.jpg", np.tile(np.array([[1, 1, 5, 5, 0]], np.float32), (count, 1)))

    with caplog.at_level(logging.WARNING):
        assert warn_about_box_limit([with_boxes(3), with_boxes(12), with_boxes(15)], 10, "train.txt") == 7
    assert ("train.txt: 2 images have more than --max-boxes 10 boxes (up to 15); 7 boxes beyond the limit are left "
            "out of training") in caplog.text
    assert warn_about_box_limit([with_boxes(10)], 10, "train.txt") == 0


def test_the_frozen_phase_runs_at_the_rate_scaled_to_its_own_batch(tmp_path):
    import dataclasses

    from utils.training.trainer import make_optimizer, peak_learning_rate

    config = dataclasses.replace(config_from(tmp_path, "--warmup-epochs", "0", "--lr-decay", "step",
                                             "--freeze-epochs", "1", "--freeze-batch-size", "16"), epochs=2)
    assert (peak_learning_rate(config), peak_learning_rate(config, 16)) == pytest.approx((1e-3, 2e-3))
    optimizer = make_optimizer(config, total_steps=1000, warmup_steps=0, frozen_steps=10, frozen_batch_size=16)

    def rate_at(step: int) -> float:
        optimizer.iterations.assign(step)
        return float(optimizer.learning_rate)

    assert rate_at(0) == pytest.approx(2e-3) and rate_at(9) == pytest.approx(2e-3)
    assert rate_at(10) == pytest.approx(1e-3)  # the second phase: the rate of --batch-size 8


def test_a_corrupt_best_model_is_named_and_the_run_falls_back_to_last(tmp_path, caplog):
    import logging

    from utils.inference.loading import load_detector, load_model_file

    config = config_from(tmp_path)
    run = tmp_path / "run"
    save_config(config, run / "config.json")
    model = tiny_detector()
    model.save(run / "last.keras")
    (run / "best.keras").write_bytes((run / "last.keras").read_bytes()[:100])  # a kill mid-copy, a full disk
    with pytest.raises(ValueError, match=r"best\.keras: corrupt or incomplete model file"):
        load_model_file(run / "best.keras")
    with caplog.at_level(logging.WARNING):
        loaded = load_detector(run)
    assert loaded.count_params() == 3 * 3 * (3 + 1) * 6  # three 1×1 convs, 3 → 18 channels
    assert "best.keras: corrupt or incomplete model file" in caplog.text
    assert "using" in caplog.text and "last.keras instead" in caplog.text


def test_atomic_writes_take_the_umask_mode_and_leftovers_are_removed(tmp_path):
    import os

    from utils.io.files import atomic_write_text, remove_temporaries

    previous = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "config.json", "{}")
    finally:
        os.umask(previous)
    assert (tmp_path / "config.json").stat().st_mode & 0o777 == 0o640
    leftovers = [tmp_path / ".best.k3j2h1g0.keras", tmp_path / ".best.1a2b3c4d.keras"]
    for path in leftovers:
        path.write_bytes(b"partial")
    (tmp_path / "best.keras").write_bytes(b"model")
    assert sorted(remove_temporaries(tmp_path / "best.keras")) == sorted(leftovers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "config.json"]


def test_the_epoch_report_names_boxes_cut_beyond_max_boxes_and_logs_them(capsys):
    import tensorflow as tf

    from utils.data.sample_check import SkippedSamples
    from utils.training.callbacks import SkippedSamplesReport

    dropped = tf.Variable(0, dtype=tf.int64)
    report = SkippedSamplesReport(SkippedSamples(), dropped, max_boxes=40)
    logs = {}
    report.on_epoch_end(0, logs)
    assert logs["dropped_boxes"] == 0 and "max-boxes" not in capsys.readouterr().out
    dropped.assign(12)
    report.on_epoch_end(1, logs)
    assert "epoch 2: 12 boxes beyond --max-boxes 40 were cut from augmented samples" in capsys.readouterr().out
    assert logs["dropped_boxes"] == 12 and int(dropped.numpy()) == 0


def test_ctrl_c_in_fit_stops_at_the_end_of_the_running_step_and_restores_the_handler():
    import os
    import signal

    import keras
    import tensorflow as tf

    from utils.training.callbacks import StopAtStepEnd

    ended = []

    class CtrlCInStepTwo(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 1:
                os.kill(os.getpid(), signal.SIGINT)  # arrives while step 1 runs

        def on_train_batch_end(self, batch, logs=None):
            ended.append(batch)

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    data = tf.data.Dataset.from_tensor_slices((np.ones((8, 2)), np.ones((8, 1)))).batch(2)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        model.fit(data, epochs=2, verbose=0, callbacks=[CtrlCInStepTwo(), StopAtStepEnd()])
    assert ended == [0, 1]  # step 1 finished; nothing after it ran
    assert signal.getsignal(signal.SIGINT) is before
