"""`prune.py`: a trained detector's network pruned channel by channel (`nets.pruning`), saved as a detector with
the same classes, box coding and settings, with its size before and after."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from nets.detector import YoloDetector
from nets.model_stats import model_flops, parameters
from nets.pruning import PrunedLayer, prune_network
from utils.config.settings import check_fields, setting
from utils.inference.loading import load_keras_detector
from utils.io.files import atomic_write


@dataclass(frozen=True)
class PruneRequest:
    """What `prune.py` is asked: which detector, how much, where to."""

    model: str = setting(None, "run directory or .keras file", flag="--run-dir", aliases=("--model",),
                         metavar="PATH", required=True)
    ratio: float = setting(0.5, "share of each prunable convolution's channels to remove (by |BatchNorm γ|)",
                           minimum=0, maximum=0.95)
    output: str = setting(None, "the pruned detector's .keras file", required=True)

    def __post_init__(self) -> None:
        check_fields(self)
        if not self.output.endswith(".keras"):
            raise ValueError(f"--output {self.output}: expected a .keras file")


@dataclass(frozen=True)
class PruneReport:
    layers: list[PrunedLayer]
    parameters: tuple[int, int]  # before, after (as PyTorch counts them)
    gflops: tuple[float, float]


def network_of(detector: YoloDetector) -> keras.Model:
    return keras.Model(detector.inputs, detector.outputs, name=detector.name)


def prune_detector(request: PruneRequest) -> PruneReport:
    """Prune the detector of `request.model` and save it to `request.output` (written beside, then renamed)."""
    detector = load_keras_detector(request.model)
    network = network_of(detector)
    pruned, layers = prune_network(network, request.ratio)
    result = YoloDetector(pruned, detector.class_names, detector.decoder, detector.settings, name=detector.name)
    output = Path(request.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(output, lambda tmp: result.save(tmp))
    static = None not in network.input_shape[1:3]
    flops = (model_flops(network) / 1e9, model_flops(pruned) / 1e9) if static else (float("nan"), float("nan"))
    return PruneReport(layers, (parameters(network), parameters(pruned)), flops)


def format_report(report: PruneReport, request: PruneRequest) -> str:
    before, after = report.parameters
    channels = sum(layer.channels for layer in report.layers)
    kept = sum(layer.kept for layer in report.layers)
    return (f"pruned {len(report.layers)} convolutions at ratio {request.ratio:g}: {channels} → {kept} channels; "
            f"parameters {before / 1e6:.2f} M → {after / 1e6:.2f} M ({after / before:.0%}), GFLOPs "
            f"{report.gflops[0]:.2f} → {report.gflops[1]:.2f}; wrote {request.output}\n"
            f"fine-tune it with the run's own settings: python train.py --config {config_of(request.model)} "
            f"--init-model {request.output} --run-dir RUN_DIR --epochs N")


def config_of(source: str) -> str:
    """The run config beside a detector (a run directory's, or the folder of a .keras file)."""
    path = Path(source)
    return str((path if path.is_dir() else path.parent) / "config.json")
