"""Where umi picks bf16 by itself: only where the CPU has the units that make it faster than fp32 (an AVX2 CPU
emulates bf16 and ran it about 8x slower), so a training preset resumed on another machine keeps its speed."""

from __future__ import annotations

from umi.models.hf import bf16_is_fast
from umi.train.config import preset

EPYC = "processor\t: 0\nflags\t\t: fpu vme sse sse2 avx avx2 fma bmi2 sha_ni\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
COOPER = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"


def test_bf16_is_fast_reads_the_cpu_flags() -> None:
    assert bf16_is_fast("cpu", EPYC) is False
    assert bf16_is_fast("cpu", SAPPHIRE) is True
    assert bf16_is_fast("cpu", COOPER) is True
    assert bf16_is_fast("cpu", "no flags line at all") is False


def test_the_cpu_epoch_preset_leaves_the_dtype_to_the_machine() -> None:
    for stage in ("stage1", "planner", "caller", "summarizer"):
        assert preset("cpu-epoch", stage).bf16 is None  # type: ignore[arg-type]
