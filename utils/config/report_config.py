"""What an evaluation measures and draws (`get_map.py`'s report), declared once: `ReportConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from utils.config.detect_config import PREDICT_SCORE_THRESHOLD
from utils.config.settings import check_fields, setting

COCO_ENGINES = ("faster-coco-eval", "pycocotools")


@dataclass(frozen=True)
class ReportConfig:
    """The operating point of the precision/recall figures, extra VOC IoU thresholds, the COCO engine, the plots."""

    pr_score: float = setting(PREDICT_SCORE_THRESHOLD, "score a detection needs to count in precision / recall / F1, "
                                                       "the error breakdown, the confusion matrix and the gallery "
                                                       "(the prediction default; APs use every detection)",
                              minimum=0, maximum=1)
    voc_iou: tuple[float, ...] = setting((0.75,), "extra IoU thresholds for VOC all-point mAP (0.5 is always "
                                                  "reported)", metavar="IOU")
    coco_engine: str = setting("faster-coco-eval", "COCO evaluator: the C++ port (fast) or pycocotools itself "
                                                   "(reference)", choices=COCO_ENGINES)
    plots: bool = setting(True, "draw the plots and the worst-images gallery (--no-plots: metrics only)")
    gallery: int = setting(8, "how many worst images the gallery shows", minimum=0)

    def __post_init__(self) -> None:
        check_fields(self)
        if any(not 0 < iou < 1 for iou in self.voc_iou):
            raise ValueError(f"voc_iou: IoU thresholds must be in (0, 1), got {list(self.voc_iou)}")
