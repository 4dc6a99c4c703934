"""Model code: backbones, necks, heads, the assembled detector and its loss.

Importing `nets` registers EffYOLO's Keras classes (the detector, fused layers, losses, ShuffleNet's layers, the
implicit layers of YOLOv7's head), so
`keras.saving.load_model` reads the `.keras` files this project writes.
"""

from nets import detector, fused, layers, loss, loss_v5, shufflenet_v2  # noqa: F401  (registration)
