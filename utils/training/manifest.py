"""`manifest.json`: what a run was made from — package versions, git commit, config hash, annotation fingerprints."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from utils.config.run_config import TrainConfig, to_dict
from utils.io.files import atomic_write_json

PACKAGES = ("tensorflow", "keras", "numpy", "opencv-python-headless", "faster-coco-eval", "pycocotools")


def config_hash(config: TrainConfig) -> str:
    """sha256 of the config's canonical JSON (sorted keys): equal configs, equal hashes."""
    return hashlib.sha256(json.dumps(to_dict(config), sort_keys=True).encode()).hexdigest()


def file_fingerprint(path: str | Path) -> dict:
    """sha256, size and line count of an annotation file (what changes when the data does)."""
    data = Path(path).read_bytes()
    return {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "lines": data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)}


def git_commit(directory: Path) -> dict:
    """The commit and whether the work tree had changes; "unknown" outside a git checkout."""
    def git(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit or "unknown", "dirty": bool(status) if status is not None else None}


def package_versions() -> dict:
    versions = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_manifest(config: TrainConfig, path: str | Path, resolved: dict | None = None) -> dict:
    """Write the manifest (atomically) and return it; `resolved` adds values derived at start (e.g. the peak
    learning rate after batch scaling, steps per epoch)."""
    manifest = {
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config_sha256": config_hash(config),
        "git": git_commit(Path(__file__).resolve().parent.parent),
        "packages": package_versions(),
        "platform": platform.platform(),
        "annotations": {"train": file_fingerprint(config.train), "val": file_fingerprint(config.val)},
        "resolved": resolved or {},
    }
    atomic_write_json(path, manifest)
    return manifest
