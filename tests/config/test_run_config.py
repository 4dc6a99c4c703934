import dataclasses
import json

import pytest

import train
from utils.config.run_config import (
    DEFAULT_ANCHORS_FILE,
    AugmentConfig,
    ModelSpec,
    TrainConfig,
    load_config,
    save_config,
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
    # The defaults, resolved once: AdamW's rate and momentum at the nominal batch, the YOLOv5 neck.
    assert (in_code.optimizer, in_code.learning_rate, in_code.momentum) == ("adamw", 8e-3, 0.9)
    assert (in_code.model.neck, in_code.model.input_size, in_code.nominal_batch_size) == ("yolov5", 416, 64)


def test_every_setting_flag_takes_its_default_and_help_from_the_dataclass_field():
    parser = train.make_parser()
    actions = {action.dest: action for action in parser._actions}
    for config_class in (TrainConfig, ModelSpec, AugmentConfig):
        for field in dataclasses.fields(config_class):
            if not field.metadata.get("cli"):  # made from other inputs (the class and anchor files)
                continue
            action = actions[field.name]
            assert action.default == field.default and action.help == field.metadata["help"], field.name
    assert actions["learning_rate"].option_strings == ["--lr"] and actions["flip_probability"].option_strings == [
        "--flip"]
