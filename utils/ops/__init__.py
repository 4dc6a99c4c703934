"""Tensor ops: box geometry, box coding, letterbox, NMS; the detection result type."""
