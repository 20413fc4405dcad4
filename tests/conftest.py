"""Suite-wide fixtures: where the shared data lives, and a guard that fails any non-loopback connection."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("UMI_SHARED_DATA", ROOT.parent / "shared" / "data"))
# CI sets UMI_REQUIRE_DATA=1 (`.ci/run`): the golden, scorer and split checks must run there, not skip.
REQUIRE_DATA = os.environ.get("UMI_REQUIRE_DATA", "") not in ("", "0")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data`; tests that need it skip with a clear message where it is absent, and fail naming the
    missing folder when UMI_REQUIRE_DATA=1 (CI), so a green CI run always includes them."""
    if not SHARED_DATA.is_dir():
        message = f"shared data not found at {SHARED_DATA} (set UMI_SHARED_DATA)"
        if REQUIRE_DATA:
            pytest.fail(f"{message}; UMI_REQUIRE_DATA=1 makes this a failure, not a skip", pytrace=False)
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def ood_path(shared_data: Path) -> Path:
    return shared_data / "alpha_umi" / "dataset" / "toolbench" / "test" / "out_of_domain.json"


@pytest.fixture(scope="session")
def train_example(shared_data: Path) -> Path:
    return shared_data / "alpha_umi" / "dataset" / "toolbench" / "train-example"


def save_tiny_llama(tokenizer: Any, out: Path, **overrides: Any) -> Path:
    """Save a randomly initialised 2-layer Llama (seed 0) sized to `tokenizer`, with the tokenizer beside it.

    One builder for every tiny model of the suite, so the model tests and the training tests differ only in the
    overrides they name (context length, KV heads, initialisation range)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    settings: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 256,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    settings.update(overrides)
    torch.manual_seed(0)
    LlamaForCausalLM(LlamaConfig(**settings)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama_saver() -> Callable[..., Path]:
    """`save_tiny_llama` as a fixture: test folders import nothing from each other."""
    return save_tiny_llama


_real_connect = socket.socket.connect


def _is_loopback(address: object) -> bool:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        if host in ("localhost", ""):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False
    return True  # AF_UNIX paths and the like stay on this machine


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise RuntimeError(f"test tried to reach the network ({address!r}); umi tests must stay on loopback")
    return _real_connect(self, address)  # type: ignore[arg-type]


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
