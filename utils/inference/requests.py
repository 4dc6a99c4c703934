"""What each `predict.py` mode is asked to do — inputs, outputs and options — declared once as typed dataclasses
(their flags are generated from the fields, as the detection settings' are from `DetectConfig`)."""

from __future__ import annotations

from dataclasses import dataclass

from utils.config.settings import check_fields, setting
from utils.inference.latency import KERAS_RUNTIMES

MODEL_HELP = "run directory, .keras file, or an export (SavedModel folder, .onnx, .tflite)"


@dataclass(frozen=True, kw_only=True)
class OnModel:
    """A request about one trained detector."""

    model: str = setting(None, MODEL_HELP, flag="--run-dir", aliases=("--model",), required=True, metavar="PATH")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True, kw_only=True)
class StillOutputs(OnModel):
    """What `image` and `dir` write besides the drawn images."""

    crop: bool = setting(False, "also save each detection as <output folder>/crops/<class>/<image>_<k>.jpg")
    save_json: str | None = setting(None, "detections as a COCO results file (image_id = the image's absolute path)",
                                    metavar="FILE")
    save_txt: str | None = setting(None, "detections as annotation lines", metavar="FILE")
    count: bool = setting(False, "print per-class counts and write counts.json (totals and per image) beside the "
                                 "outputs")


@dataclass(frozen=True, kw_only=True)
class ImageRequest(StillOutputs):
    input: tuple[str, ...] = setting(None, "image file(s)", required=True)
    output: str = setting(None, "output image path (one input) or folder (several inputs)", required=True)


@dataclass(frozen=True, kw_only=True)
class DirRequest(StillOutputs):
    input: str = setting(None, "folder, searched recursively", required=True)
    output: str = setting(None, "folder; the input's sub-folders are mirrored", required=True)


@dataclass(frozen=True, kw_only=True)
class VideoRequest(OnModel):
    input: str = setting(None, "video file, or a camera index such as 0", required=True)
    output: str = setting(None, "annotated video (.mp4 or .avi), written at the source fps", required=True)
    show: bool = setting(False, "also show the frames in a window (needs a display; q stops)")
    max_frames: int = setting(0, "stop after this many frames (0: all)", minimum=0)
    count: bool = setting(False, "print per-class counts per frame and write <output name>_counts.json (totals "
                                 "and per frame) beside the output")


@dataclass(frozen=True, kw_only=True)
class FpsRequest(OnModel):
    model: str = setting(None, "run directory or .keras file", flag="--run-dir", aliases=("--model",), metavar="PATH",
                         required=True)
    batch_sizes: tuple[int, ...] = setting((1, 8), "batch sizes to time", metavar="N")
    runtimes: tuple[str, ...] = setting(("graph",), "Keras runtimes: graph, and xla (opt-in: measure before "
                                                    "enabling it; on some CPUs it is slower)", choices=KERAS_RUNTIMES)
    runs: int = setting(20, "timed calls per cell (after 3 warm-up calls)", minimum=1)
    saved_model: str | None = setting(None, "also time this exported SavedModel (predict.py export)", metavar="DIR")
    onnx: str | None = setting(None, "also time this ONNX export in ONNX Runtime", metavar="FILE")
    litert: str | None = setting(None, "also time this LiteRT (.tflite) export (batch 1)", metavar="FILE")


@dataclass(frozen=True, kw_only=True)
class HeatmapRequest(OnModel):
    model: str = setting(None, "run directory or .keras file", flag="--run-dir", aliases=("--model",), metavar="PATH",
                         required=True)
    input: tuple[str, ...] = setting(None, "image file(s)", required=True)
    output: str = setting(None, "output image path (one input) or folder", required=True)
