"""The inference settings, declared once: `DetectConfig`.

Every way to detect reads them from here under the same names: a detector carries its own (saved in its `.keras`
file and in an export's metadata), `predict.py`, `get_map.py` and `predict.py export` generate their flags from the
fields, and each use has its own defaults. Evaluation keeps nearly every box — score 0.001, NMS IoU 0.7, 300 per
image, as Ultralytics validates, so figures compare with its models' (an NMS at 0.5 also removes true boxes of
touching objects; docs/evaluation.md measures the difference); an export bakes in a threshold that consumers can
still raise. `DetectConfig.for_use` resolves a use's settings from the detector's own and the flags
given.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from utils.config.settings import MODEL_OWN, check_fields, setting

USES = ("predict", "evaluate", "export")
# The prediction threshold a new detector carries, chosen from precision/recall/F1 measured on the dev sets
# (docs/results.md#score-thresholds); the export's and the evaluation's P/R operating point follow it.
PREDICT_SCORE_THRESHOLD = 0.25


@dataclass(frozen=True)
class DetectConfig:
    """How detections are selected and returned. The field defaults are what a newly trained detector carries."""

    score_threshold: float = setting(
        PREDICT_SCORE_THRESHOLD, "minimum score (objectness × class probability) a detection needs",
        flag="--score-threshold", aliases=("--conf",), minimum=0, maximum=1,
        uses={"predict": MODEL_OWN, "evaluate": 0.001, "export": PREDICT_SCORE_THRESHOLD})
    nms_iou: float = setting(
        0.45, "NMS: a box overlapping a higher-scored one of its class by more than this IoU is removed",
        aliases=("--iou",), above=0, maximum=1, uses={"predict": MODEL_OWN, "evaluate": 0.7, "export": MODEL_OWN})
    max_detections: int = setting(
        100, "detections kept per image, best first", aliases=("--max-det",), minimum=1,
        uses={"predict": MODEL_OWN, "evaluate": 300, "export": MODEL_OWN})
    letterbox: bool = setting(
        True, "letterbox images into the input (aspect kept, padded); --no-letterbox stretches them",
        uses={"predict": MODEL_OWN, "evaluate": MODEL_OWN, "export": MODEL_OWN})
    classes: tuple[str, ...] | None = setting(
        None, "keep only detections of these class names", metavar="NAME", uses={"predict": None, "export": None})
    batch_size: int = setting(8, "images per forward pass", minimum=1, uses={"predict": 8, "evaluate": 8})
    xla: bool = setting(False, "XLA-compile the model and box decoding (Keras models; measure with predict.py fps "
                               "first: on some CPUs it is slower)", uses={"predict": False, "evaluate": False})

    def __post_init__(self) -> None:
        check_fields(self)
        if self.classes is not None and not self.classes:
            object.__setattr__(self, "classes", None)

    def replace(self, **changes) -> DetectConfig:
        """These settings with `changes`; None values leave a setting as it is."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def for_use(cls, use: str, own: DetectConfig | None = None, **given) -> DetectConfig:
        """The settings of one use: each given value (None: not given), else the use's default, where that default
        is the detector's own (`own`; default: the field defaults)."""
        if use not in USES:
            raise ValueError(f"unknown use {use!r}; expected one of {USES}")
        own = own or cls()
        values = {}
        for declared in dataclasses.fields(cls):
            default = (declared.metadata.get("uses") or {}).get(use, MODEL_OWN)
            chosen = given.get(declared.name)
            values[declared.name] = chosen if chosen is not None else (
                getattr(own, declared.name) if default == MODEL_OWN else default)
        return cls(**values)

    def to_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["classes"] = list(self.classes) if self.classes is not None else None
        return values

    @classmethod
    def from_dict(cls, values: dict) -> DetectConfig:
        """Inverse of `to_dict`; unknown keys are an error naming them."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown detection settings: {sorted(unknown)}")
        return cls(**values)
