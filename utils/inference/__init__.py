"""Running a trained detector: loading, batch prediction, drawing, heatmaps, latency."""
