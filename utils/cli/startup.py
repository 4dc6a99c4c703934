"""TensorFlow's start-up noise kept out of the scripts' output: on a CPU-only machine its C++ runtime prints half a
dozen lines at import and at the first ops (oneDNN notices, CPU-feature hints, a CUDA stub and a `failed call to
cuInit` that reads as a failure). `quiet_startup` routes the process's stderr through a filter that drops exactly
those messages and passes every other line, real errors included; `--verbose` turns the filter off.

It imports nothing heavy: scripts call it before their own imports load TensorFlow.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NOISE = tuple(re.compile(pattern) for pattern in (
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$",
    r"^[IW]\d{4} [\d:. ]+\d+ \S+\] (oneDNN custom operations are on|Could not find cuda drivers on your machine"
    r"|This TensorFlow binary is optimized to use available CPU instructions)",
    r"^E\d{4} [\d:. ]+\d+ cuda_(platform|executor)\.cc:\d+\] failed call to cuInit",
    r"^E\d{4} [\d:. ]+\d+ \S+\] oneDNN supports DT_UINT8 only on platforms with AVX-512",
    r"^To enable the following instructions: .* in other operations, rebuild TensorFlow with the appropriate "
    r"compiler flags\.$",
))


def is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NOISE)


def quiet_startup(argv: list[str] | None = None) -> None:
    """Filter TensorFlow's start-up noise from this process's stderr (file descriptor 2, so the C++ runtime's
    writes too), unless `--verbose` is among the arguments."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's own INFO and WARNING lines
    if "--verbose" in (sys.argv[1:] if argv is None else argv) or os.environ.get("EFFYOLO_UNFILTERED_STDERR"):
        return
    sys.stderr.flush()
    original = os.dup(2)
    reader, writer = os.pipe()
    os.dup2(writer, 2)
    os.close(writer)
    os.environ["EFFYOLO_UNFILTERED_STDERR"] = "1"  # child Python processes: their stderr already passes here

    def forward() -> None:
        with os.fdopen(reader, "rb") as lines:
            for line in lines:
                if not is_noise(line.decode("utf-8", "replace").rstrip("\n")):
                    os.write(original, line)

    thread = threading.Thread(target=forward, name="stderr-filter", daemon=True)
    thread.start()

    def restore() -> None:
        sys.stderr.flush()
        os.dup2(original, 2)  # the pipe's last writer closes: the thread reads to the end and stops
        thread.join(timeout=5)

    atexit.register(restore)
