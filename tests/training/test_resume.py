"""Safety and scale of training: SIGKILL then --resume, Ctrl-C, a NaN loss, MirroredStrategy and two multi-worker
processes. Each trains for real (small models, few steps) on a generated dataset, so every clone runs them, in
subprocesses where the process itself is under test."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import train
import voc_annotation
from tests.conftest import QUICKEST_BACKBONE, ROOT
from utils.training.plots import read_csv_log

pytestmark = pytest.mark.slow
FASTEST = ["--backbone", QUICKEST_BACKBONE, "--neck", "yolov5", "--assigner", "v5", "--mosaic", "0", "--close-mosaic",
           "0", "--hsv-s", "0", "--hsv-v", "0", "--hsv-h", "0"]


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    """A generated set (20 images of 96×96, three shapes) as annotation lines: `train.txt` (16), `test.txt` (4), and
    `long_train.txt`, the 16 training images listed 8 times, so an epoch lasts long enough (64 steps) to be killed in
    the middle of."""
    from utils.data.synthetic import generate_synthetic_voc

    out = tmp_path_factory.mktemp("generated_lines")
    classes = generate_synthetic_voc(out / "voc", num_images=20, seed=5, image_size=(96, 96))
    (out / "classes.txt").write_text(classes.read_text())
    assert voc_annotation.main(["--voc-root", str(out / "voc"), "--classes", str(out / "classes.txt"),
                                "--out-dir", str(out), "--val-fraction", "0", "--test-fraction", "0.2"]) == 0
    train_lines = (out / "train.txt").read_text().strip().splitlines()
    assert len(train_lines) == 16
    (out / "long_train.txt").write_text("\n".join(train_lines * 8) + "\n")
    return out


def train_command(lines: Path, run: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), "--train", str(lines / "long_train.txt"), "--val",
            str(lines / "test.txt"), "--classes", str(lines / "classes.txt"), *FASTEST, "--input-size", "96",
            "--batch-size", "2", "--epochs", "3", "--eval-period", "3", "--warmup-epochs", "0.5",
            "--run-dir", str(run), *extra]


def resume_epoch(run: Path) -> int:
    path = run / "resume" / "training_metadata.json"
    try:
        return json.loads(path.read_text())["epoch"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


@pytest.mark.heavy
def test_sigkill_in_epoch_two_then_resume_matches_an_uninterrupted_run(lines, tmp_path):
    """Epoch 1 is a frozen-backbone phase at batch 4 (32 steps), epochs 2–3 train everything at batch 2 (64 steps
    each): the kill lands in the second phase, whose optimizer state must come back whole."""
    from utils.config.run_config import load_config
    from utils.training.schedules import WarmupDecay
    from utils.training.trainer import peak_learning_rate

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    killed = tmp_path / "killed"
    victim = subprocess.Popen(train_command(lines, killed, "--freeze-epochs", "1", "--freeze-batch-size", "4"),
                              env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while resume_epoch(killed) < 1:
        assert victim.poll() is None, victim.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(2.0)  # epoch 2 is under way: its step is traced anew (unfrozen, batch 2), then 64 steps
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert resume_epoch(killed) == 1, "the kill came after epoch 2 ended; the test needs longer epochs"
    assert read_csv_log(killed / "training_log.csv")["epoch"] == [0.0]

    resumed = subprocess.run([sys.executable, str(ROOT / "train.py"), "--resume", str(killed)], env=env,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming" in resumed.stdout and "after epoch 1 of 3" in resumed.stdout
    log = read_csv_log(killed / "training_log.csv")
    assert log["epoch"] == [0.0, 1.0, 2.0]  # each epoch once: exactly three, no gap, no repeat
    assert all(np.isfinite(log["loss"])) and np.isfinite(log["val_map50"][2])
    # The learning rate an uninterrupted run logs: the schedule (160 steps, warmup half of the first epoch) after
    # 32, 96 and 160 steps. The resumed run matches it only if the optimizer's step count came back.
    config = load_config(killed / "config.json")
    peak = peak_learning_rate(config)  # at batch 2; the frozen phase's 32 steps at batch 4 run at twice the rate
    schedule = WarmupDecay(peak, 160, 16, config.min_learning_rate_ratio, first_phase_steps=32,
                           first_phase_scale=peak_learning_rate(config, 4) / peak)
    assert log["lr"] == [float(np.float32(schedule(step))) for step in (32, 96, 160)]
    manifest = json.loads((killed / "manifest.json").read_text())["resolved"]
    assert manifest["start_epoch"] == 1 and manifest["total_steps"] == 160
    assert [(p["batch_size"], p["frozen"], p["steps_per_epoch"]) for p in manifest["phases"]] == [
        (4, True, 32), (2, False, 64)]


def test_ctrl_c_prints_the_resume_command_instead_of_a_traceback(lines, tmp_path):
    run = tmp_path / "interrupted"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(train_command(lines, run), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 300
    while not (run / "config.json").is_file():
        assert process.poll() is None, process.stderr.read()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert stderr.strip().splitlines()[-1] == f"interrupted: continue with: python train.py --resume {run}"


@pytest.mark.heavy
def test_nan_loss_stops_with_a_message_and_a_resumable_state(shapes_voc, tmp_path, monkeypatch):
    import tensorflow as tf

    import nets.detector

    lines = tmp_path / "lines"
    classes = str(shapes_voc / "classes.txt")
    assert voc_annotation.main(["--voc-root", str(shapes_voc), "--classes", classes, "--out-dir", str(lines),
                                "--val-fraction", "0.25", "--test-fraction", "0"]) == 0
    run = tmp_path / "run"
    flags = ["--train", str(lines / "train.txt"), "--val", str(lines / "val.txt"), "--classes", classes, *FASTEST,
             "--input-size", "64", "--epochs", "2", "--batch-size", "6", "--eval-period", "2", "--run-dir", str(run)]
    real_loss = nets.detector.detector_loss
    calls = tf.Variable(0, trainable=False)

    class NanAfterThreeSteps:  # from the second epoch (3 steps per epoch) the loss is NaN
        def __init__(self, inner):
            self.inner, self.part_names = inner, inner.part_names

        def parts(self, boxes, outputs):
            calls.assign_add(1)
            return {part: tf.where(calls > 3, float("nan"), value)
                    for part, value in self.inner.parts(boxes, outputs).items()}

    monkeypatch.setattr(nets.detector, "detector_loss", lambda *a, **k: NanAfterThreeSteps(real_loss(*a, **k)))
    with pytest.raises(FloatingPointError, match=r"training loss became nan in epoch 2; stopped\. The state after "
                                                  r"epoch 1 is saved in .*resume"):
        train.main(flags)
    assert resume_epoch(run) == 1
    monkeypatch.setattr(nets.detector, "detector_loss", real_loss)
    assert train.main(["--resume", str(run)]) == 0  # the saved state trains on (here without the poison)
    log = read_csv_log(run / "training_log.csv")
    assert log["epoch"] == [0.0, 1.0] and all(np.isfinite(log["loss"]))


def test_resuming_a_finished_run_says_it_is_complete_and_how_to_extend_it(tmp_path, capsys):
    """A run whose resume state holds all its epochs (written here as training writes it: no need to train) is
    complete: --resume says so and how to extend it, and trains nothing."""
    from utils.config.run_config import ModelSpec, TrainConfig, save_config

    run = tmp_path / "run"
    (run / "resume").mkdir(parents=True)
    spec = ModelSpec(class_names=("a",), anchors=[[10, 13]] * 9, input_size=64)
    save_config(TrainConfig(train="t.txt", val="v.txt", run_dir=str(run), model=spec, epochs=1), run / "config.json")
    (run / "resume" / "training_metadata.json").write_text(json.dumps({"epoch": 1, "batch": -1}))
    assert train.main(["--resume", str(run)]) == 0
    printed = capsys.readouterr().out
    assert f"{run}: complete (all 1 epochs are trained); nothing to train. To train longer: python train.py " \
           f"--resume {run} --epochs N (more than 1)" in printed and f"resuming {run}" not in printed
    # A run whose time budget is spent: as a budgeted run records it after each epoch (60 s used of 1 minute).
    (run / "resume" / "time_budget.json").write_text(json.dumps({"epoch": 1, "seconds": 60.0, "epoch_seconds": 30.0}))
    assert train.main(["--resume", str(run), "--epochs", "5", "--time-limit", "1"]) == 0
    assert "complete (its time budget of 1 minutes is spent after 1 epochs); nothing to train. To train longer: " \
           f"python train.py --resume {run} --time-limit M (more minutes in all)" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "resume"]  # nothing trained, nothing written


def strategy_script(strategy: str, lines: Path, run: Path, logical_cpus: int = 0) -> str:
    devices = (f"import tensorflow as tf\ncpu = tf.config.list_physical_devices('CPU')[0]\n"
               f"tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * "
               f"{logical_cpus})\n") if logical_cpus else ""
    return (f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{devices}import train\n"
            f"sys.exit(train.main({train_flags(lines, run) + ['--strategy', strategy, '--ema']!r}))\n")


def train_flags(lines: Path, run: Path) -> list[str]:
    return ["--train", str(lines / "train.txt"), "--val", str(lines / "test.txt"), "--classes",
            str(lines / "classes.txt"), *FASTEST, "--input-size", "64", "--batch-size", "4", "--epochs", "1",
            "--run-dir", str(run)]


@pytest.mark.heavy
def test_mirrored_strategy_over_two_logical_cpus_trains_an_epoch(lines, tmp_path):
    run = tmp_path / "mirrored"
    result = subprocess.run([sys.executable, "-c", strategy_script("mirrored", lines, run, logical_cpus=2)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((run / "manifest.json").read_text())["resolved"]
    assert (manifest["strategy"], manifest["replicas"]) == ("MirroredStrategy", 2)
    log = read_csv_log(run / "training_log.csv")
    assert log["epoch"] == [0.0] and np.isfinite(log["loss"][0]) and np.isfinite(log["val_map50"][0])
    assert (run / "resume" / "ema.npz").is_file()  # the weight average works on mirrored variables


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.heavy
def test_two_multiworker_processes_train_an_epoch_together(lines, tmp_path):
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    run = tmp_path / "multiworker"
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2"}
        processes.append(subprocess.Popen([sys.executable, "-c", strategy_script("multiworker", lines, run)],
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [process.communicate(timeout=600) for process in processes]
    for process, (_, stderr) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, stderr[-3000:]
    manifest = json.loads((run / "manifest.json").read_text())["resolved"]
    assert (manifest["strategy"], manifest["replicas"]) == ("MultiWorkerMirroredStrategy", 2)
    log = read_csv_log(run / "training_log.csv")  # written by worker 0, the chief
    assert log["epoch"] == [0.0] and np.isfinite(log["loss"][0]) and np.isfinite(log["val_map50"][0])
    assert (run / "resume" / "ema.npz").is_file()
