"""The flag reference in the docs is what the parsers say."""

from utils.cli.reference import REFERENCE, reference_text


def test_the_flag_reference_matches_the_parsers():
    assert REFERENCE.read_text(encoding="utf-8") == reference_text(), (
        "docs/flags.md is out of date: run `python -m utils.cli.reference`")


def test_the_reference_shows_the_config_defaults():
    text = reference_text()
    assert "| `--neck` {yolov3, yolov5, yolov7-tiny} | `yolov5` |" in text and "| `--epochs` | `50` |" in text
    assert "## predict.py export" in text  # subcommands get their own sections


def declared_flags(parser, config_classes, use=None) -> set[str]:
    from utils.cli.flags import cli_fields, flag_of

    return {name for config_class in config_classes for field in cli_fields(config_class, use)
            for name in (flag_of(field), *field.metadata["aliases"])}


def parser_flags(parser) -> set[str]:
    # --verbose (TensorFlow's start-up messages) is on every script, not a setting
    return {name for action in parser._actions for name in action.option_strings} - {"-h", "--help", "--verbose"}


def test_every_flag_of_predict_and_get_map_is_a_declared_setting():
    import argparse

    from utils.cli.parsers import PREDICT_MODES, get_map_parser, predict_parser
    from utils.config.detect_config import DetectConfig
    from utils.config.report_config import ReportConfig
    from utils.evaluation.evaluate import EvaluationRequest

    modes = next(a for a in predict_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert set(modes) == set(PREDICT_MODES)
    for name, (request, use, _) in PREDICT_MODES.items():
        expected = declared_flags(modes[name], [request]) | (declared_flags(modes[name], [DetectConfig], use)
                                                             if use else set())
        assert parser_flags(modes[name]) == expected | {f"--no-{f[2:]}" for f in expected
                                                        if f"--no-{f[2:]}" in parser_flags(modes[name])}, name
    assert "--score-threshold" in parser_flags(modes["export"]) and "--xla" not in parser_flags(modes["export"])
    assert "--score-threshold" not in parser_flags(modes["fps"])
    parser = get_map_parser()
    expected = declared_flags(parser, [EvaluationRequest, ReportConfig]) | declared_flags(parser, [DetectConfig],
                                                                                           "evaluate")
    assert parser_flags(parser) - {f for f in parser_flags(parser) if f.startswith("--no-")} == expected
    # One vocabulary: the same flag names the same setting everywhere; evaluation has its own defaults.
    actions = {a.dest: a for a in parser._actions}
    assert actions["score_threshold"].default == 0.001 and actions["nms_iou"].default == 0.7
    assert actions["max_detections"].default == 300
    assert actions["pr_score"].option_strings == ["--pr-score"] and "--confidence" not in parser_flags(parser)
    image = {a.dest: a for a in modes["image"]._actions}
    assert image["score_threshold"].option_strings == ["--score-threshold", "--conf"]
    assert image["score_threshold"].default is None  # the model's own
    assert {a.dest: a for a in modes["export"]._actions}["score_threshold"].default == 0.25
