"""The flag reference in the docs is what the parsers say."""

from utils.cli.reference import REFERENCE, reference_text


def test_the_flag_reference_matches_the_parsers():
    assert REFERENCE.read_text(encoding="utf-8") == reference_text(), (
        "docs/flags.md is out of date: run `python -m utils.cli.reference`")


def test_the_reference_shows_the_config_defaults():
    text = reference_text()
    assert "| `--neck` {yolov3, yolov5} | `yolov5` |" in text and "| `--epochs` | `50` |" in text
    assert "## predict.py export" in text  # subcommands get their own sections
