"""Where a run's numbers came from: the Python, library versions, CPU and the kernels torch and numpy use.

The same seed gives the same numbers only on the same software and hardware: torch picks its CPU kernels by the
instruction set it finds (AVX2, AVX-512), and BLAS libraries sum in different orders. Each run records the
environment it trained in, so a report can say which machine its numbers came from and whether they mix.
"""

from __future__ import annotations

import functools
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["PACKAGES", "describe", "run_environment", "summarize_environments"]

PACKAGES = ("torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy")


@functools.lru_cache(maxsize=1)
def run_environment() -> dict[str, str]:
    """This process's environment: Python, the packages that compute a run, the CPU, torch's kernels, BLAS."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "python": platform.python_version(),
        **versions,
        "cpu": _cpu_model(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": _torch_blas(),
        "numpy_blas": _numpy_blas(),
        "system": f"{platform.system()} {platform.machine()}",
    }


def describe(environment: dict[str, Any]) -> str:
    """One line: ``Python 3.11.7, torch 2.14.1 (AVX512 kernels), ..., CPU AMD EPYC 9R14``."""
    packages = ", ".join(f"{name} {environment.get(name, '?')}" for name in PACKAGES if name != "torch")
    return (
        f"Python {environment.get('python', '?')}, torch {environment.get('torch', '?')} "
        f"({environment.get('torch_cpu_capability', '?')} kernels, BLAS {environment.get('torch_blas', '?')}), "
        f"{packages}, numpy's BLAS "
        f"{environment.get('numpy_blas', '?')}; CPU {environment.get('cpu', '?')} ({environment.get('system', '?')})"
    )


def summarize_environments(environments: list[dict[str, Any] | None]) -> list[tuple[str, int]]:
    """Each distinct environment's line with how many runs trained in it, most runs first; runs stored before
    environments were recorded (None) are counted as such."""
    counts: dict[str, int] = {}
    for environment in environments:
        line = "not recorded (stored before runs recorded it)" if environment is None else describe(environment)
        counts[line] = counts.get(line, 0) + 1
    return sorted(counts.items(), key=lambda item: -item[1])


def _cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo, else what platform says)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _torch_blas() -> str:
    """The BLAS torch was built with (``BLAS_INFO`` in its build configuration)."""
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    return found.group(1) if found else "unknown"


def _numpy_blas() -> str:
    """numpy's BLAS library and version, as numpy's build configuration names them."""
    config = getattr(np, "__config__", None)
    blas = getattr(config, "CONFIG", {}).get("Build Dependencies", {}).get("blas", {}) if config else {}
    if not blas:
        return "unknown"
    return f"{blas.get('name', 'unknown')} {blas.get('version', '')}".strip()


if __name__ == "__main__":  # python -m sb3_entropy.study.provenance: this machine's line
    print(describe(run_environment()), file=sys.stdout)
