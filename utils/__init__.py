"""Data, box, metric and training utilities."""
