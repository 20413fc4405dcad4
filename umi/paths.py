"""Where umi finds the shared public data: one rule for every command and library function."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data() -> Path:
    """`UMI_SHARED_DATA` when set, else `../shared/data` beside the checkout (how CI lays it out)."""
    env = os.environ.get("UMI_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"
