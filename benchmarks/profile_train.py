"""Where a training step's time goes: TensorFlow profiler traces of real `model.fit` steps, summed by op family
and by phase (forward, loss, backward, optimizer).

For each backbone (with `--neck`, at `--input-size`, batch `--batch-size`, 20 classes, the real loss and AdamW):
`--warmup` untraced steps, then `--steps` steps under `tf.profiler`, whose kernel times are read from the trace
(the XPlane protobuf TensorFlow writes) and divided by the step count. Also prints the median wall time of the
same number of untraced steps. Op time can exceed wall time: the executor runs independent ops on both cores.

Phases come from the op's name scope: `gradient_tape/…`, the train function's own top-level ops (gradient sums,
custom gradients) and XLA executions (the fused swish gradient, the step's only XLA code) are backward,
`detector_loss/…` (the detector's own loss; `compile_loss/…` for a model compiled with a Keras loss) the loss,
the optimizer's scope its update. Families come from the op type and the layer it belongs to.

Example:
    python benchmarks/profile_train.py --backbones efficientnet-b0 efficientnetv2-b0 --neck yolov5
    python benchmarks/profile_train.py --keras-kernels   # Keras' own BatchNormalization and swish ops
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from utils.config.run_config import NECKS, ModelSpec  # noqa: E402
from utils.config.settings import field_default  # noqa: E402

PHASES = ("forward", "loss", "backward", "optimizer")
FAMILIES = ("convolution", "depthwise conv", "batch norm", "activation", "other layers", "loss", "optimizer")
BN_SCOPE = re.compile(r"(^|_)bn(_\d+)?$")
XLA_EXECUTION = "CpuExecutable::"
ACTIVATION_SCOPE = re.compile(r"(activation|_act)(_\d+)?$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+",
                        default=["efficientnet-b0", "efficientnetv2-b0", "shufflenetv2-x1.0", "efficientnet-lite0"])
    parser.add_argument("--neck", default=field_default(ModelSpec, "neck"), choices=NECKS)
    parser.add_argument("--input-size", type=int, default=416)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", default="float32", help="a Keras dtype policy, e.g. mixed_bfloat16")
    parser.add_argument("--keras-kernels", action="store_true",
                        help="profile Keras' own BatchNormalization and swish ops instead of the fused kernels")
    parser.add_argument("--top", type=int, default=12, help="op types listed per backbone")
    return parser.parse_args(argv)


LOSS_SCOPES = ("detector_loss", "compile_loss")


def in_loss(scopes: list[str]) -> bool:
    return any(scope in scopes for scope in LOSS_SCOPES)


def op_phase(name: str, optimizer_scope: str) -> str:
    if name.startswith(XLA_EXECUTION):  # the step's only XLA clusters: `nets.fused.Swish`'s gradient
        return "backward"
    scopes = name.split("/")
    if "gradient_tape" in scopes or len(scopes) == 2:  # top level of the train function: gradient sums
        return "backward"
    if optimizer_scope in scopes:
        return "optimizer"
    if in_loss(scopes):
        return "loss"
    return "forward"


def op_family(name: str, op_type: str, phase: str) -> str:
    scopes = name.split("/")
    if phase == "optimizer" or in_loss(scopes):
        return "optimizer" if phase == "optimizer" else "loss"
    if "Depthwise" in op_type:
        return "depthwise conv"
    if "Conv2D" in op_type:
        return "convolution"
    if "BatchNorm" in op_type or any(BN_SCOPE.search(scope) for scope in scopes):
        return "batch norm"
    if (name.startswith(XLA_EXECUTION) or "Swish" in op_type or any(ACTIVATION_SCOPE.search(s) for s in scopes)
            or (len(scopes) == 2 and op_type in ("Sigmoid", "Mul", "Sub", "AddV2"))):
        return "activation"  # top-level Sigmoid/Mul/Sub/AddV2: the gradient tf.nn.silu defines
    return "other layers"


def kernel_times(trace_dir: str) -> dict[str, float]:
    """Seconds per op instance (name `scope/…/op:Type`) summed over a trace's TensorFlow executor threads."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    totals: dict[str, float] = collections.defaultdict(float)
    for path in Path(trace_dir).rglob("*.xplane.pb"):
        space = xplane_pb2.XSpace.FromString(path.read_bytes())
        for plane in space.planes:
            if plane.name != "/host:CPU":
                continue
            for line in plane.lines:
                if not line.name.startswith("tf_Compute"):
                    continue
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name
                    if ":" in name and not name.startswith("ExecutorState"):
                        totals[name] += event.duration_ps * 1e-12
    return totals


def op_type_of(name: str) -> str:
    return re.sub(r"^_Mkl(Native)?", "", name.rsplit(":", 1)[1])


def profile(model, dataset, steps: int, warmup: int):
    import tensorflow as tf

    from benchmarks.training_setup import fit_step_times

    wall = statistics.median(fit_step_times(model, dataset, steps, warmup))
    with tempfile.TemporaryDirectory(prefix="effyolo_profile_") as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        fit_step_times(model, dataset, steps, 0)
        tf.profiler.experimental.stop()
        times = kernel_times(trace_dir)
    return wall, {name: seconds / steps for name, seconds in times.items()}


def summarise(times: dict[str, float], optimizer_scope: str):
    by_phase: dict[str, float] = collections.Counter()
    by_family: dict[tuple[str, str], float] = collections.Counter()
    by_type: dict[tuple[str, str], float] = collections.Counter()
    for name, seconds in times.items():
        phase = op_phase(name, optimizer_scope)
        op_type = op_type_of(name)
        by_phase[phase] += seconds
        by_family[(op_family(name, op_type, phase), "backward" if phase == "backward" else "forward")] += seconds
        by_type[(op_type, phase)] += seconds
    return by_phase, by_family, by_type


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from benchmarks.training_setup import (
        compiled_detector,
        in_memory,
        pipeline_batches,
        training_annotations,
        training_config,
    )
    from nets.fused import set_fused_kernels

    keras.mixed_precision.set_dtype_policy(args.precision)
    kernels = "Keras' BatchNormalization and swish ops" if args.keras_kernels else "fused BatchNorm and swish"
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} cores; {args.neck} neck, "
          f"{args.input_size}², batch {args.batch_size}, {args.precision}; {kernels}; {args.steps} traced steps after "
          f"{args.warmup}; ms per step")
    rows = []
    with tempfile.TemporaryDirectory(prefix="effyolo_profile_data_") as workdir:
        annotations = training_annotations(Path(workdir))
        for backbone in args.backbones:
            config = training_config(backbone, args.neck, args.input_size, args.batch_size)
            model = compiled_detector(config)
            set_fused_kernels(model, not args.keras_kernels)
            dataset = in_memory(pipeline_batches(config, annotations))
            wall, times = profile(model, dataset, args.steps, args.warmup)
            by_phase, by_family, by_type = summarise(times, model.optimizer.name)
            rows.append((backbone, wall, by_phase, by_family))
            total = sum(by_phase.values())
            print(f"\n### {backbone}: step {wall * 1000:.0f} ms wall, {total * 1000:.0f} ms op time (" +
                  ", ".join(f"{phase} {by_phase[phase] * 1000:.0f}" for phase in PHASES) + ")")
            print("| op type | phase | ms/step | share of op time |\n|---|---|---:|---:|")
            for (op_type, phase), seconds in sorted(by_type.items(), key=lambda item: -item[1])[:args.top]:
                print(f"| {op_type} | {phase} | {seconds * 1000:.0f} | {seconds / total:.1%} |")
    print("\n| backbone | step wall ms | op ms | " +
          " | ".join(f"{family} fwd / bwd" for family in FAMILIES[:6]) + " | optimizer |")
    print("|---|---:|---:|" + "---:|" * len(FAMILIES))
    for backbone, wall, by_phase, by_family in rows:
        cells = [f"{by_family[(family, 'forward')] * 1000:.0f} / {by_family[(family, 'backward')] * 1000:.0f}"
                 for family in FAMILIES[:6]]
        cells.append(f"{by_family[('optimizer', 'forward')] * 1000:.0f}")
        print(f"| {backbone} | {wall * 1000:.0f} | {sum(by_phase.values()) * 1000:.0f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
