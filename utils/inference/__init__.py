"""Running a trained detector: the one detector interface, loading (Keras or export), image files, the predict
modes (stills, video, latency, heatmaps) and their requests."""
