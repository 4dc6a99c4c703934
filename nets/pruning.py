"""Structured pruning: whole output channels removed from convolutions, so the tensors — and the time of every
runtime — shrink, not just the count of non-zero weights.

A convolution can lose output channels when BatchNorm follows it and those channels reach only layers that can lose
the same channels and end in ordinary convolutions, which then lose the matching input channels. Layers the
channels may pass through: BatchNorm, activations, pooling, padding, upsampling, dropout, depthwise convolutions,
concatenations, and a squeeze-excite gate (global pooling → reshape → 1×1 convs → multiply; the gate's last
convolution loses the same output channels). Sums (residual shortcuts), channel shuffles, YOLOR's implicit layers
and a model's outputs need every channel, so what feeds them stays whole. In the backbone this prunes the expansion
convolutions of (Fused-)MBConv blocks, the inner convolutions of CSP bottlenecks and ShuffleNet branches; in the
neck and the decoupled head, every convolution that feeds another; never the head's prediction convolutions.

Channels are ranked by the magnitude of the BatchNorm scale γ that follows their convolution (network slimming,
Liu et al. 2017: a channel whose γ is near 0 contributes little beyond its offset). Each prunable convolution keeps
its `1 − ratio` share of channels with the largest |γ|, rounded up to a multiple of 8 (CPU kernels run whole
vectors) and never fewer than 8. The result is an ordinary Keras model of the same layers with smaller widths,
every kept weight copied; layers it does not touch compute exactly what they did. Fine-tune it with
`train.py --init-model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
import numpy as np

# Layers that act on each channel alone (a cut channel set passes through them unchanged).
CHANNEL_WISE = (keras.layers.Activation, keras.layers.LeakyReLU, keras.layers.ReLU, keras.layers.MaxPooling2D,
                keras.layers.UpSampling2D, keras.layers.ZeroPadding2D, keras.layers.Dropout,
                keras.layers.GlobalAveragePooling2D)
MIN_CHANNELS = 8


@dataclass(frozen=True)
class PrunedLayer:
    name: str  # the convolution
    channels: int  # before
    kept: int  # after


def _is_channel_wise(layer: keras.layers.Layer) -> bool:
    # The project's fused swish is an Activation subclass; BatchNormalization is handled apart (it has weights).
    return isinstance(layer, CHANNEL_WISE) or type(layer).__name__ == "Swish"


def _plain_conv(layer: keras.layers.Layer) -> bool:
    return type(layer) is keras.layers.Conv2D and layer.groups == 1


def _depthwise(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.DepthwiseConv2D) and layer.depth_multiplier == 1


class Graph:
    """The layers of a functional model with who feeds whom (one call per layer, as in these networks)."""

    def __init__(self, model: keras.Model) -> None:
        self.model = model
        self.layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        self.producer = {}  # id(tensor) → layer
        self.inputs = {}  # layer name → input tensors
        self.outputs_of = {}  # layer name → output tensors
        for layer in self.layers:
            node = layer._inbound_nodes[0]
            self.inputs[layer.name] = list(node.input_tensors)
            self.outputs_of[layer.name] = list(node.output_tensors)
            for tensor in node.output_tensors:
                self.producer[id(tensor)] = layer
        self.consumers: dict[str, list[keras.layers.Layer]] = {layer.name: [] for layer in self.layers}
        for layer in self.layers:
            for tensor in self.inputs[layer.name]:
                source = self.producer.get(id(tensor))
                if source is not None and layer not in self.consumers[source.name]:
                    self.consumers[source.name].append(layer)
        self.model_outputs = {id(t) for t in model.outputs}

    def gates_of(self, layer: keras.layers.Layer) -> list[keras.layers.Layer] | None:
        """The convolutions that produce every other input of the Multiply `layer` (squeeze-excite gates: plain
        convs feeding only it), or None if any other input is not one."""
        multiply_inputs = [self.producer.get(id(t)) for t in self.inputs[layer.name]]
        gates = [source for source in multiply_inputs if source is not None and _plain_conv(source)
                 and self.consumers[source.name] == [layer]]
        return gates if len(gates) == len(multiply_inputs) - 1 else None

    def cuttable_from(self, layer: keras.layers.Layer, gates: list[str], seen: set[str], mixed: bool = False
                      ) -> bool:
        """Whether the channels of `layer`'s output may be cut: everything they reach can lose them and ends in
        plain convolutions, none is a model output. Collects the squeeze-excite gate convs that must be cut
        alike in `gates`. `mixed`: past a concatenation, where other channels join (no gate may follow)."""
        if any(id(t) in self.model_outputs for t in self.outputs_of[layer.name]) or not self.consumers[layer.name]:
            return False
        for consumer in self.consumers[layer.name]:
            if consumer.name in seen or _plain_conv(consumer):
                continue
            seen.add(consumer.name)
            joins = isinstance(consumer, keras.layers.Concatenate)
            if isinstance(consumer, keras.layers.Multiply):
                found = self.gates_of(consumer)
                if found is None or mixed:
                    return False
                gates += [gate.name for gate in found]
            elif isinstance(consumer, keras.layers.Reshape):
                if tuple(consumer.target_shape[:-1]) != (1, 1):  # only the squeeze-excite (B, C) → (B, 1, 1, C)
                    return False
            elif not (joins or _is_channel_wise(consumer) or _depthwise(consumer)
                      or isinstance(consumer, keras.layers.BatchNormalization)):
                return False
            if not self.cuttable_from(consumer, gates, seen, mixed or joins):
                return False
        return True

    def prunable(self) -> dict[str, tuple[str, list[str]]]:
        """Prunable convolution → (its BatchNorm, the gate convs cut with it), in layer order: plain convs followed
        by BatchNorm alone whose channels may be cut, not prediction convs (`*_pred`)."""
        found = {}
        for layer in self.layers:
            consumers = self.consumers[layer.name]
            if not _plain_conv(layer) or layer.name.endswith("_pred") or len(consumers) != 1:
                continue
            batchnorm = consumers[0]
            if not isinstance(batchnorm, keras.layers.BatchNormalization):
                continue
            gates: list[str] = []
            if self.cuttable_from(batchnorm, gates, set()):
                found[layer.name] = (batchnorm.name, gates)
        return found


def channels_to_keep(gamma: np.ndarray, ratio: float) -> np.ndarray:
    """Indices (ascending) of the channels with the largest |γ|: the `1 − ratio` share, rounded up to a multiple of
    8, at least 8 (or all, for fewer)."""
    channels = len(gamma)
    keep = min(channels, max(MIN_CHANNELS, math.ceil(channels * (1 - ratio) / 8) * 8))
    return np.sort(np.argsort(-np.abs(gamma), kind="stable")[:keep])


@dataclass
class _Plan:
    """One functional model's cut: kept output channels per convolution, and which original channels each tensor
    keeps (absent: all)."""

    graph: Graph
    kept: dict[str, np.ndarray]
    channels: dict[int, np.ndarray]

    def of(self, tensor) -> np.ndarray:
        index = self.channels.get(id(tensor))
        return np.arange(tensor.shape[-1]) if index is None else index


def _plan(model: keras.Model, ratio: float) -> tuple[_Plan, list[PrunedLayer]]:
    graph = Graph(model)
    kept: dict[str, np.ndarray] = {}
    report = []
    for conv_name, (bn_name, gates) in graph.prunable().items():
        index = channels_to_keep(model.get_layer(bn_name).gamma.numpy(), ratio)
        kept[conv_name] = index
        for gate in gates:
            kept[gate] = index
        report.append(PrunedLayer(conv_name, model.get_layer(conv_name).filters, len(index)))
    plan = _Plan(graph, kept, {})
    for layer in graph.layers:  # layer order is a topological order: inputs are mapped before their consumers
        inputs, outputs = graph.inputs[layer.name], graph.outputs_of[layer.name]
        if isinstance(layer, keras.layers.Concatenate):
            offsets = np.cumsum([0] + [t.shape[-1] for t in inputs[:-1]])
            joined = np.concatenate([plan.of(t) + offset for t, offset in zip(inputs, offsets, strict=True)])
            if len(joined) < outputs[0].shape[-1]:
                plan.channels[id(outputs[0])] = joined
        elif _plain_conv(layer):
            if layer.name in kept:
                plan.channels[id(outputs[0])] = kept[layer.name]
        elif (isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Reshape, keras.layers.Multiply))
              or _is_channel_wise(layer) or _depthwise(layer)):
            if id(inputs[0]) in plan.channels:
                plan.channels[id(outputs[0])] = plan.channels[id(inputs[0])]
    return plan, report


def prune_network(network: keras.Model, ratio: float) -> tuple[keras.Model, list[PrunedLayer]]:
    """A copy of `network` (and of its nested backbone) with each prunable convolution's output channels cut to
    the `1 − ratio` share with the largest |γ| (see the module docstring), the kept weights copied; and what was
    cut, backbone first."""
    if not 0 <= ratio < 1:
        raise ValueError(f"pruning ratio must be in [0, 1), got {ratio}")
    nested = [layer for layer in network.layers if isinstance(layer, keras.Model)]
    replaced, report = {}, []
    for model in nested:
        plan, cut = _plan(model, ratio)
        replaced[model.name] = keras.models.clone_model(model, clone_function=_cloner(plan))
        _copy_kept_weights(plan, replaced[model.name])
        report += cut
    plan, cut = _plan(network, ratio)
    pruned = keras.models.clone_model(network, clone_function=_cloner(plan, replaced))
    _copy_kept_weights(plan, pruned, skip=set(replaced))
    return pruned, report + cut


def _cloner(plan: _Plan, replaced: dict[str, keras.Model] | None = None):
    """The clone function: each layer rebuilt from its config with the widths the plan gives it."""
    replaced = replaced or {}
    graph = plan.graph

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        if layer.name in replaced:
            return replaced[layer.name]
        config = layer.get_config()
        if layer.name in plan.kept:
            config["filters"] = len(plan.kept[layer.name])
        elif isinstance(layer, keras.layers.Reshape):
            config["target_shape"] = (*layer.target_shape[:-1], len(plan.of(graph.inputs[layer.name][0])))
        return layer.__class__.from_config(config)

    return clone


def _copy_kept_weights(plan: _Plan, pruned: keras.Model, skip: set[str] = frozenset()) -> None:
    """Copy every kept weight: kernels sliced by the channels their input keeps and the outputs they keep."""
    graph = plan.graph
    for layer in graph.layers:
        if layer.name in skip:
            continue
        weights = layer.get_weights()
        if not weights:
            continue
        source = plan.of(graph.inputs[layer.name][0])
        target = pruned.get_layer(layer.name)
        if _plain_conv(layer):
            out = plan.kept.get(layer.name, slice(None))
            kernel = weights[0][:, :, source, :][..., out]
            target.set_weights([kernel] + [bias[out] for bias in weights[1:]])
        elif _depthwise(layer):
            target.set_weights([weights[0][:, :, source, :]] + [bias[source] for bias in weights[1:]])
        elif isinstance(layer, keras.layers.BatchNormalization):
            target.set_weights([w[source] for w in weights])
        else:  # whole: the head's implicit layers, anything with weights the cut does not reach
            target.set_weights(weights)
            if isinstance(target, keras.layers.Normalization):
                target.finalize_state()  # set_weights alone leaves its mean and variance at their initial values
