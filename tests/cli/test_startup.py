"""TensorFlow's start-up noise is filtered from the scripts' stderr; everything else, real errors included, passes."""

import subprocess
import sys

from tests.conftest import ROOT
from utils.cli.startup import is_noise

NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796489174.215379    4616 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796489174.215751    4616 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will "
    "not be used.",
    "E0000 00:00:1796481323.425544   11837 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: Failed "
    "call to cuInit: UNKNOWN ERROR (303)",
    "E0000 00:00:1796481326.661094   11837 util.cc:131] oneDNN supports DT_UINT8 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.",
    "I0000 00:00:1796487244.624362   32655 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use "
    "available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
]
KEPT = [
    "E0000 00:00:1796481323.425544   11837 op_kernel.cc:1857] OP_REQUIRES failed at conv_ops.cc: INVALID_ARGUMENT",
    "error: logs/run: no best.keras or last.keras in this run directory",
    "W0000 00:00:1796481323.425544   11837 loader.cc:12] something TensorFlow warns about",
    "Traceback (most recent call last):",
]


def test_exactly_the_start_up_messages_are_noise():
    assert all(is_noise(line) for line in NOISE)
    assert not any(is_noise(line) for line in KEPT)


def test_a_script_prints_no_start_up_noise_and_its_errors_still_show():
    run = subprocess.run([sys.executable, "predict.py", "fps", "--run-dir", "no/such/run"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2 and "error: no/such/run: expected a run directory" in run.stderr
    assert not any(is_noise(line) for line in run.stderr.splitlines()), run.stderr
    assert "oneDNN" not in run.stderr and "cuInit" not in run.stderr
