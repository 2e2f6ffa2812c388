"""Which arithmetic a model runs in: bf16 on a CPU with native bf16, fp32 elsewhere.

On a CPU with avx512_bf16 or amx_bf16 a yolov8n forward pass under bf16 autocast is about twice as fast as fp32
(training and inference alike); without those flags torch emulates bf16, slower than fp32. "auto" picks by the
CPU's flags; on an accelerator it is left to the caller (ultralytics' own AMP check when training, fp32 when
detecting).
"""

from __future__ import annotations

from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16")
BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # CPU flags of native bf16 arithmetic (without them bf16 is emulated, slow)
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (none where /proc/cpuinfo does not exist)."""
    if not CPUINFO.is_file():
        return set()
    return {flag for line in CPUINFO.read_text().splitlines() if line.startswith("flags")
            for flag in line.partition(":")[2].split()}


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively."""
    return bool(cpu_flags() & BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'bf16' or 'fp32' on a CPU; on an accelerator 'auto' stays 'auto'."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {PRECISIONS}")
    if precision == "auto" and device.type == "cpu":
        return "bf16" if native_bf16() else "fp32"
    return precision
