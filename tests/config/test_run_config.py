import dataclasses
import json

import pytest

import train
from utils.cli.parsers import train_parser
from utils.config.run_config import (
    DEFAULT_ANCHORS_FILE,
    AugmentConfig,
    LossConfig,
    ModelSpec,
    TrainConfig,
    load_config,
    save_config,
    to_dict,
)
from utils.training.launch import file_anchors


def test_cli_config_round_trips_through_its_file(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\n")
    config, _ = train.resolve_config(["--train", "t.txt", "--val", "v.txt", "--classes", str(classes), "--phi", "3",
                                      "--input-size", "320", "--run-dir", str(tmp_path / "run"), "--lr", "0.002"])
    assert config.model.backbone == "efficientnet-b3" and config.model.class_names == ("a", "b")
    # The 416-pixel YOLOv3 anchors scaled to 320: (10, 13) → (7.69, 10.0).
    assert config.model.anchors[0] == (7.69, 10.0) and len(config.model.anchors) == 9
    save_config(config, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == config


def test_bad_config_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="run config not found"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "config.json").write_text(json.dumps({"train": "x", "typo": 1}))
    expected = r"config.json: not a valid EffYOLO run config \(unknown config keys: \['typo'\]; a config written by an "
    with pytest.raises(ValueError, match=expected):
        load_config(tmp_path / "config.json")


def test_a_config_built_in_code_is_the_one_the_command_line_builds(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\n")
    from_flags, _ = train.resolve_config(["--train", "t.txt", "--val", "v.txt", "--classes", str(classes),
                                          "--run-dir", "run"])
    in_code = TrainConfig(train="t.txt", val="v.txt", run_dir="run",
                          model=ModelSpec(class_names=("a", "b"), anchors=file_anchors(DEFAULT_ANCHORS_FILE, 416)))
    assert from_flags == in_code
    # The defaults, resolved once: AdamW's rate and momentum at the nominal batch, the YOLOv5 neck, the decoupled
    # head with its assigner and loss gains.
    assert (in_code.optimizer, in_code.learning_rate, in_code.momentum) == ("adamw", 8e-3, 0.9)
    assert (in_code.model.neck, in_code.model.input_size, in_code.nominal_batch_size) == ("yolov5", 416, 64)
    assert (in_code.model.head, in_code.model.assigner, in_code.model.box_coding) == ("decoupled", "tal", "dfl")
    assert (in_code.loss.box_gain, in_code.loss.objectness_gain) == (7.5, 0.0)


def test_the_head_follows_the_assigner_when_only_the_assigner_is_named(tmp_path):
    spec = ModelSpec(class_names=("a",), assigner="v3")
    assert (spec.head, spec.box_coding) == ("anchor", "v3")
    assert ModelSpec(class_names=("a",), head="anchor").assigner == "v5"
    assert ModelSpec(class_names=("a",), assigner="tal").head == "decoupled"
    with pytest.raises(ValueError, match="assigner: the decoupled head takes tal, got 'v5'"):
        ModelSpec(class_names=("a",), head="decoupled", assigner="v5")
    # A run saved before the decoupled head existed: its config names the assigner but no head, and keeps the anchor
    # head (and its loss gains) when it is loaded to resume or evaluate.
    saved = to_dict(TrainConfig(train="t", val="v", run_dir="r", model=spec))
    del saved["model"]["head"], saved["loss"]["box_gain"], saved["loss"]["objectness_gain"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    loaded = load_config(tmp_path / "config.json")
    assert (loaded.model.head, loaded.model.assigner, loaded.loss.box_gain, loaded.loss.objectness_gain) == (
        "anchor", "v3", 0.05, 1.0)


def test_every_setting_flag_takes_its_default_and_help_from_the_dataclass_field():
    parser = train_parser()
    actions = {action.dest: action for action in parser._actions}
    for config_class in (TrainConfig, ModelSpec, LossConfig, AugmentConfig):
        for field in dataclasses.fields(config_class):
            if not field.metadata.get("cli"):  # made from other inputs (the class and anchor files)
                continue
            action = actions[field.name]
            assert action.default == field.default and action.help == field.metadata["help"], field.name
    assert actions["learning_rate"].option_strings == ["--lr"] and actions["flip_probability"].option_strings == [
        "--flip"]


def config_file(tmp_path, text: str, name: str = "config.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


MODEL_YAML = "model:\n  class_names: [cat, dog]\n  anchors: " + str([[10, 13]] * 9) + "\n"


def test_config_values_are_checked_against_their_declared_types(tmp_path):
    # YAML reads 1e-3 as a string: a number written as a string is taken where it is unambiguous.
    loaded = load_config(config_file(tmp_path, MODEL_YAML + "train: t.txt\nlearning_rate: 1e-3\n"))
    assert loaded.learning_rate == 1e-3 and isinstance(loaded.learning_rate, float)
    assert load_config(config_file(tmp_path, MODEL_YAML + "epochs: 20.0\n")).epochs == 20
    bad = {
        "epochs: 1.5": r"epochs: expected a whole number, got 1.5",
        "ema: 'no'": r"ema: expected true or false, got 'no' \(a string\)",
        "ema: 1": r"ema: expected true or false, got 1",
        "time_limit: .nan": r"time_limit: expected a finite number, got nan",
        "batch_size: 0": r"batch_size: must be at least 1, got 0",
        "optimizer: rmsprop": r"optimizer: expected one of sgd, adam, adamw, got 'rmsprop'",
        "augment:\n  mosaic: lots": r"augment.mosaic: expected a number, got 'lots'",
        "loss:\n  anchor_t: 0.5": r"loss.anchor_t: must be above 1, got 0.5",
    }
    for line, message in bad.items():
        with pytest.raises(ValueError, match=r"config.yaml: not a valid EffYOLO run config \(" + message):
            load_config(config_file(tmp_path, MODEL_YAML + line + "\n"))
    # A class list given as one string would train with one class per letter: refused, naming the key.
    text = "model:\n  class_names: cats\n  anchors: " + str([[10, 13]] * 9) + "\n"
    with pytest.raises(ValueError, match=r"model.class_names: expected a list, got 'cats' \(a string\)"):
        load_config(config_file(tmp_path, text))
    with pytest.raises(ValueError, match=r"model.anchors\[0\]: expected a list of 2 values, got 3"):
        load_config(config_file(tmp_path, "model:\n  class_names: [a]\n  anchors: " + str([[1, 2, 3]] * 9) + "\n"))
    with pytest.raises(ValueError, match="model.class_names: names must be distinct"):
        load_config(config_file(tmp_path, "model:\n  class_names: [a, a]\n  anchors: " + str([[1, 2]] * 9) + "\n"))


def test_python_configs_are_checked_as_files_are():
    spec = ModelSpec(class_names=("a",), anchors=file_anchors(DEFAULT_ANCHORS_FILE, 416))
    with pytest.raises(ValueError, match="ema: expected true or false, got 'no'"):
        TrainConfig(train="t", val="v", run_dir="r", model=spec, ema="no")
    with pytest.raises(ValueError, match="time_limit: expected a finite number, got nan"):
        TrainConfig(train="t", val="v", run_dir="r", model=spec, time_limit=float("nan"))
    with pytest.raises(ValueError, match="model: expected a ModelSpec mapping"):
        TrainConfig(train="t", val="v", run_dir="r", model={"class_names": ["a"]})


def test_an_earlier_versions_loss_keys_are_read_from_the_top_level(tmp_path):
    path = config_file(tmp_path, MODEL_YAML + "anchor_t: 3.0\nignore_threshold: 0.6\n")
    loaded = load_config(path)
    assert (loaded.loss.anchor_t, loaded.loss.ignore_threshold) == (3.0, 0.6)
    assert "anchor_t" not in json.dumps(to_dict(loaded)).split('"loss"')[0]  # saved in its section now


def test_time_limit_nan_is_refused_on_the_command_line(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("a\n")
    with pytest.raises(ValueError, match="time_limit: expected a finite number, got nan"):
        train.resolve_config(["--train", "t", "--val", "v", "--classes", str(classes), "--run-dir", "r",
                              "--time-limit", "nan"])
