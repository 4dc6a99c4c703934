import json

import pytest

import train
from utils.config.run_config import load_config, save_config


def test_cli_config_round_trips_through_its_file(tmp_path):
    classes = tmp_path / "classes.txt"
    classes.write_text("a\nb\n")
    args = train.parse_args(["--train", "t.txt", "--val", "v.txt", "--classes", str(classes), "--phi", "3",
                             "--input-size", "320", "--run-dir", str(tmp_path / "run"), "--lr", "0.002"])
    config = train.build_config(args)
    assert config.model.backbone == "efficientnet-b3" and config.model.class_names == ("a", "b")
    # The 416-pixel YOLOv3 anchors scaled to 320: (10, 13) → (7.69, 10.0).
    assert config.model.anchors[0] == (7.69, 10.0) and len(config.model.anchors) == 9
    save_config(config, tmp_path / "config.json")
    assert load_config(tmp_path / "config.json") == config


def test_bad_config_files_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="run config not found"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "config.json").write_text(json.dumps({"train": "x", "typo": 1}))
    expected = r"config.json: not a valid EffYOLO run config \(unknown config keys: \['typo'\]\)"
    with pytest.raises(ValueError, match=expected):
        load_config(tmp_path / "config.json")
