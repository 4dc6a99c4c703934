"""Every script's command line. `train.py`, `predict.py` and `get_map.py` take their flags from the typed configs
(`TrainConfig`, `DetectConfig`, `ReportConfig` and the request dataclasses); the data tools' few flags are written
here. The scripts parse with these and call the library; `docs/flags.md` is generated from them."""

from __future__ import annotations

import argparse

from utils.cli.flags import add_config_flags
from utils.config.detect_config import DetectConfig
from utils.config.report_config import ReportConfig
from utils.config.run_config import (
    ASSIGNERS_OF_HEAD,
    DEFAULT_ANCHORS_FILE,
    DEFAULT_HEAD,
    NECKS,
    AugmentConfig,
    LossConfig,
    ModelSpec,
    TrainConfig,
)
from utils.config.settings import field_default
from utils.data.voc import DIFFICULT_POLICIES
from utils.evaluation.evaluate import EvaluationRequest
from utils.export.policy import ExportRequest
from utils.inference.requests import DirRequest, FpsRequest, HeatmapRequest, ImageRequest, VideoRequest
from utils.training.pruning import PruneRequest

ANCHORS_FILE = str(DEFAULT_ANCHORS_FILE.relative_to(DEFAULT_ANCHORS_FILE.parents[1]))
# predict.py's modes: (request dataclass, the detection settings' use or None, help).
PREDICT_MODES = {
    "image": (ImageRequest, "predict", "detect on one or more image files"),
    "dir": (DirRequest, "predict", "detect on every image under a folder"),
    "video": (VideoRequest, "predict", "detect on a video file or a camera"),
    "fps": (FpsRequest, None, "latency table: Keras runtimes × batch sizes, and exports"),
    "heatmap": (HeatmapRequest, None, "objectness heatmaps per output level"),
    "export": (ExportRequest, "export", "SavedModel, ONNX or LiteRT with pre/post-processing, checked against "
                                        "the Keras model"),
}


def train_parser() -> argparse.ArgumentParser:
    """How to start (config file, resume), the inputs that make the model's classes and anchors, and one flag per
    setting of `TrainConfig`, `ModelSpec`, `LossConfig` and `AugmentConfig`."""
    parser = argparse.ArgumentParser(description="Train an EfficientNet-YOLO detector on annotation-line files.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    run = parser.add_argument_group("run")
    run.add_argument("--config", help="start from this run config (JSON as saved in a run, or YAML with the same "
                                      "keys); flags given as well override it")
    run.add_argument("--resume", metavar="DIR",
                     help="continue the run in DIR from its last completed epoch, with its saved config (flags "
                          "given as well override training settings; the model cannot change)")
    inputs = parser.add_argument_group("model inputs")
    inputs.add_argument("--classes", help="class list, one name a line")
    inputs.add_argument("--anchors", default=None,
                        help=f"nine w,h anchors in pixels of a 416 input, scaled to --input-size (default: "
                             f"{ANCHORS_FILE})")
    inputs.add_argument("--autoanchor", action="store_true",
                        help="replace the anchors by k-means ones when they reach < 98%% of the training boxes")
    inputs.add_argument("--phi", type=int, default=None, help="EfficientNet-B{phi}; shorthand for --backbone")
    add_config_flags(parser.add_argument_group("model"), ModelSpec)
    add_config_flags(parser.add_argument_group("training"), TrainConfig)
    add_config_flags(parser.add_argument_group("loss"), LossConfig)
    add_config_flags(parser.add_argument_group("augmentation (validation uses a plain letterbox)"), AugmentConfig)
    return with_verbose(parser)


def predict_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run a trained detector on images, a folder or a video (drawn "
                                                 "detections), time it, draw its heatmaps, or export it.")
    modes = parser.add_subparsers(dest="mode", required=True)
    for name, (request, use, help_text) in PREDICT_MODES.items():
        mode = modes.add_parser(name, help=help_text, description=help_text)
        add_config_flags(mode.add_argument_group("inputs and outputs"), request)
        if use:
            add_config_flags(mode.add_argument_group("detection settings"), DetectConfig, use)
        with_verbose(mode)
    return parser


def get_map_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Evaluate detections against annotation lines: VOC and COCO mAP, "
                                                 "P/R/F1, plots and an error breakdown.")
    add_config_flags(parser.add_argument_group("inputs and outputs"), EvaluationRequest)
    add_config_flags(parser.add_argument_group("detection settings (with a model)"), DetectConfig, "evaluate")
    add_config_flags(parser.add_argument_group("report"), ReportConfig)
    return with_verbose(parser)


def prune_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Prune a trained detector's convolutions channel by channel (by "
                                                 "|BatchNorm γ|) into a smaller detector to fine-tune and export.")
    add_config_flags(parser, PruneRequest)
    return with_verbose(parser)


def voc_annotation_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Convert a VOCdevkit (or one VOC folder) into annotation-line "
                                                 "files, one per split; or check such files.")
    parser.add_argument("--voc-root", help="VOCdevkit folder, or one folder with Annotations/")
    parser.add_argument("--classes", required=True, help="class list, one name a line")
    parser.add_argument("--out-dir", help="where <split>.txt files are written (then checked)")
    parser.add_argument("--check", nargs="+", metavar="LINES",
                        help="dataset doctor: check annotation-line files instead of converting")
    parser.add_argument("--input-size", type=int, default=field_default(ModelSpec, "input_size"),
                        help="check: the training input size")
    parser.add_argument("--anchors", default=str(DEFAULT_ANCHORS_FILE), help="check: anchors for a 416 input")
    parser.add_argument("--difficult", choices=list(DIFFICULT_POLICIES), default="mark",
                        help="VOC difficult objects: mark (not trained on, ignored by mAP, as the VOC devkit does), "
                             "keep (ordinary boxes) or drop")
    parser.add_argument("--keep-difficult", dest="difficult", action="store_const", const="keep",
                        help="same as --difficult keep")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="used only when there are no split files")
    parser.add_argument("--test-fraction", type=float, default=0.1, help="used only when there are no split files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split")
    return with_verbose(parser)


def convert_annotations_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Convert COCO json or YOLO txt folders into annotation lines (and a "
                                                 "class list), so other tools' data trains here.")
    formats = parser.add_subparsers(dest="format", required=True)
    coco = formats.add_parser("coco", help="a COCO detection json and its image folder")
    coco.add_argument("--coco-json", required=True, help="instances_*.json")
    coco.add_argument("--images", required=True, help="folder the json's file_name entries are relative to")
    coco.add_argument("--classes-out", help="where to write the class list (default: <out>.classes.txt, or "
                                            "<out-dir>/classes.txt)")
    yolo = formats.add_parser("yolo", help="an images/ folder with labels/ beside it (Ultralytics layout)")
    yolo.add_argument("--images", required=True, help="image folder (searched recursively)")
    yolo.add_argument("--labels", help="label folder, label files at the images' relative paths (default: "
                                        "Ultralytics' rule: the last 'images' component of each image's path "
                                        "becomes 'labels', else beside the image)")
    yolo.add_argument("--classes", required=True, help="class list, one name a line, in YOLO class-id order")
    for sub in (coco, yolo):
        out = sub.add_mutually_exclusive_group(required=True)
        out.add_argument("--out", help="annotation-line file to write (every image)")
        out.add_argument("--out-dir", help="split the images at random into train.txt, val.txt and test.txt here "
                                           "(for data without a validation split)")
        sub.add_argument("--val-fraction", type=float, default=0.1, help="with --out-dir: share of images in val")
        sub.add_argument("--test-fraction", type=float, default=0.1, help="with --out-dir: share in test (0: none)")
        sub.add_argument("--seed", type=int, default=0, help="with --out-dir: seed of the split")
        with_verbose(sub)
    return parser


def kmeans_for_anchors_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Compute nine anchors for your data by IoU k-means, and report how "
                                                 "well they (and the default ones) fit.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--annotations", required=True, help="annotation lines (the training split)")
    parser.add_argument("--input-size", type=int, default=field_default(ModelSpec, "input_size"),
                        help="square input size the model will train at")
    parser.add_argument("--n", type=int, default=9, help="number of anchors (three per level)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=field_default(LossConfig, "anchor_t"),
                        help="anchor side-ratio limit (YOLOv5 anchor_t)")
    parser.add_argument("--compare", default=str(DEFAULT_ANCHORS_FILE), help="anchors file to compare against")
    parser.add_argument("--output", default=None, help="write the anchors here (w,h a line, pixels of a 416 input)")
    return with_verbose(parser)


def summary_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Parameters and GFLOPs of a detector: backbone, neck, head and "
                                                 "total, or a table over every backbone; or the top-5 ImageNet "
                                                 "classes of an image for a backbone with its classifier.")
    parser.add_argument("--backbone", default=field_default(ModelSpec, "backbone"), help="backbone name")
    parser.add_argument("--phi", type=int, default=None, help="shorthand for --backbone efficientnet-b{phi}")
    parser.add_argument("--neck", default=field_default(ModelSpec, "neck"), choices=NECKS,
                        help="the feature pyramid between backbone and head")
    parser.add_argument("--head", default=DEFAULT_HEAD, choices=tuple(ASSIGNERS_OF_HEAD),
                        help="anchor: YOLOv3/v5's anchor-based head; decoupled: YOLOv8's anchor-free head")
    parser.add_argument("--input-size", type=int, default=field_default(ModelSpec, "input_size"),
                        help="square input side in pixels (GFLOPs scale with its square)")
    parser.add_argument("--num-classes", type=int, default=20, help="classes of the head (VOC: 20)")
    parser.add_argument("--all", action="store_true", help="one row per backbone")
    parser.add_argument("--classify", metavar="IMAGE",
                        help="print the top-5 ImageNet classes of IMAGE (EfficientNet and EfficientNet-Lite)")
    parser.add_argument("--backbone-weights", default="imagenet",
                        help="--classify: imagenet, or a weights file / checkpoint of the backbone with its classifier")
    return with_verbose(parser)


def synthetic_data_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Generate the bundled demo dataset: coloured shapes on textured "
                                                 "backgrounds, in VOC layout.")
    parser.add_argument("--out-dir", required=True, help="VOC folder to write (Annotations/, JPEGImages/)")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=320, help="image height and width")
    parser.add_argument("--seed", type=int, default=0)
    return with_verbose(parser)


def with_verbose(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """`--verbose` (read before the imports by `utils.cli.startup`; accepted here so argparse knows it)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up messages (oneDNN, CPU features, CUDA probing), filtered by "
                             "default")
    return parser


PARSERS = {"train": train_parser, "predict": predict_parser, "get_map": get_map_parser, "prune": prune_parser,
           "voc_annotation": voc_annotation_parser, "convert_annotations": convert_annotations_parser,
           "kmeans_for_anchors": kmeans_for_anchors_parser, "summary": summary_parser,
           "synthetic_data": synthetic_data_parser}
