"""Exporting a detector to SavedModel, ONNX and LiteRT, and running the exports."""
