"""mAP and its reports: matching detections to ground truth, metrics, plots, error analysis."""
