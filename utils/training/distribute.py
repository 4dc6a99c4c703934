"""The `tf.distribute` strategy of a run (`--strategy`) and its mixed-precision policy (`--mixed-precision`)."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "one", "mirrored", "multiworker")


def tf_config() -> dict:
    """The `TF_CONFIG` environment variable, parsed ({} when unset)."""
    try:
        return json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        raise ValueError("TF_CONFIG is not valid JSON") from None


def multiworker_cluster() -> bool:
    """Whether `TF_CONFIG` describes a cluster with more than one worker."""
    cluster = tf_config().get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: several workers in TF_CONFIG → MultiWorkerMirrored, several GPUs → Mirrored, else the default (one
    device). one: the first GPU, else the CPU. mirrored: every visible GPU (or CPU device). multiworker: from
    TF_CONFIG. The batch size is global: each replica gets batch / replicas."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")
    gpus = tf.config.list_physical_devices("GPU")  # (listing logical devices would start the runtime too early)
    if name == "multiworker" or (name == "auto" and multiworker_cluster()):
        if not multiworker_cluster():
            raise ValueError("--strategy multiworker needs TF_CONFIG listing at least two workers")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "one":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def set_precision(mixed: bool) -> str:
    """Set Keras' global dtype policy: mixed float16 on GPU, mixed bfloat16 on CPU, else float32. Returns it."""
    policy = ("mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16") if mixed \
        else "float32"
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def worker_task() -> tuple[bool, int]:
    """(whether this process is the chief — it alone writes the run directory —, its worker index), from TF_CONFIG:
    the `chief` task if the cluster has one, else worker 0; a process without TF_CONFIG is the chief."""
    config = tf_config()
    task, cluster = config.get("task", {}), config.get("cluster", {})
    if not task:
        return True, 0
    index = int(task.get("index", 0))
    if "chief" in cluster:
        return task.get("type") == "chief", index
    return task.get("type") == "worker" and index == 0, index


def build_on_local_batch(model: keras.Model, strategy: tf.distribute.Strategy) -> None:
    """Work around Keras 3's `fit` under `MultiWorkerMirroredStrategy` (keras-team/keras#20585), in two places:

    - before the first step, `fit` averages one distributed data batch across workers to build the model's metrics
      and optimizer symbolically, and that cross-worker reduce fails on a nested (x, y) batch. Shapes are all the
      build needs, so this builds on the first local replica's batch instead;
    - each step's logged values (scalars) are averaged across workers along an axis 0 scalars do not have; the
      step returns them as 1-element vectors, which that mean turns back into the cross-worker scalar.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    train_step = model.train_step

    def train_step_with_vector_logs(data):
        return tf.nest.map_structure(lambda value: tf.reshape(value, [1]), train_step(data))

    model.train_step = train_step_with_vector_logs

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = maybe_symbolic_build


def strategy_name(strategy: tf.distribute.Strategy) -> str:
    """The public name of a strategy (MultiWorkerMirroredStrategy's class is named CollectiveAllReduceStrategy)."""
    for kind, name in ((tf.distribute.MultiWorkerMirroredStrategy, "MultiWorkerMirroredStrategy"),
                       (tf.distribute.MirroredStrategy, "MirroredStrategy"),
                       (tf.distribute.OneDeviceStrategy, "OneDeviceStrategy")):
        if isinstance(strategy, kind):
            return name
    return "default (one device)"
