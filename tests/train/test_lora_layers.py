"""LoRA on the upper layers only (`lora_top_fraction`): adapters sit where asked, and the backward pass never
reaches the layers below them (that is the saving `cpu-epoch` takes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from umi.train.config import TrainConfig
from umi.train.model import load_model, prepare_model


def _lora_layers(model: torch.nn.Module) -> set[int]:
    return {int(n.split("layers.")[1].split(".")[0]) for n, p in model.named_parameters() if p.requires_grad}


def test_top_fraction_adapts_only_the_upper_layers(tiny_base: Path) -> None:
    every = prepare_model(load_model(str(tiny_base)), TrainConfig())
    upper = prepare_model(load_model(str(tiny_base)), TrainConfig(lora_top_fraction=0.5))
    assert _lora_layers(every) == {0, 1}
    assert _lora_layers(upper) == {1}

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    seen: list[str] = []
    lower = upper.base_model.model.model.layers[0]
    lower.register_full_backward_hook(lambda *_: seen.append("layer0"))
    upper(input_ids=ids, labels=ids).loss.backward()
    assert seen == []  # the backward pass stopped above layer 0
    assert all(p.grad is not None for p in upper.parameters() if p.requires_grad)


def test_top_fraction_out_of_range_is_refused(tiny_base: Path) -> None:
    with pytest.raises(ValueError, match="lora_top_fraction"):
        prepare_model(load_model(str(tiny_base)), TrainConfig(lora_top_fraction=1.5))
