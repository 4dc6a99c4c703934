"""Exporting a detector to SavedModel, ONNX and LiteRT, and checking the export against the Keras model (running
an export is `utils.inference.exported`)."""
