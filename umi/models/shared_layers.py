"""Cross-role prefix sharing below the adapters: LoRA roles on one base share the lower layers' keys and values.

GLPFT's shipped roles put their LoRA on the upper quarter of the layers (22–29 of SmolLM2-135M's 30) over one
merged stage 1. Below the lowest adapted layer every role computes exactly the same thing, so for a prompt prefix
another role has already run — the planner's tool documents and history, which the caller's next prompt repeats —
only the upper layers need computing under this role's adapter. The per-role prefix cache
(`umi.models.prefix_cache`) still serves what the role itself has seen; this serves the rest of the longest prefix
any role has seen, at `(layers - split) / layers` of its prefill (about a quarter for the shipped roles).

How: while a role generates, a forward pre-hook on layer `split` records the hidden state entering it at every
position (the lower layers' output, the same for every role). To graft another role's prefix onto this role's
cache, the lower layers' keys and values are copied from that role's cache, and layers `split…` run over the
recorded hidden states under this role's adapter, appending their keys and values. Then `generate` continues from
there as from any cache. The result equals a full prefill up to floating-point rounding of chunked attention (the
test suite checks greedy text on a growing history).

No adapter at all (zero-shot roles on one base) gives `split = layers`: the whole cache is shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def shared_depth(model: Any) -> int:
    """How many layers from the bottom no loaded adapter touches (every layer of a model without adapters; 0 where
    an adapter covers all layers, which turns sharing off)."""
    layers = len(decoder_layers(model))
    configs = getattr(model, "peft_config", None) or {}
    lowest = layers
    for cfg in configs.values():
        touched = getattr(cfg, "layers_to_transform", None)
        if touched is None:
            return 0
        touched = [touched] if isinstance(touched, int) else list(touched)
        lowest = min([lowest, *touched])
    return lowest


def _backbone(model: Any) -> Any:
    """The decoder stack (`.layers`, `.rotary_emb`) of a (PEFT-wrapped) causal LM."""
    return (model.get_base_model() if hasattr(model, "get_base_model") else model).model


def decoder_layers(model: Any) -> Any:
    """The decoder layer list of a (PEFT-wrapped) causal LM."""
    return _backbone(model).layers


class HiddenRecorder:
    """Records the hidden state entering layer `split` for batch-1 forward passes while `recording`."""

    def __init__(self, model: Any, split: int) -> None:
        self.split = split
        self.parts: list[torch.Tensor] = []
        self.recording = False
        layers = decoder_layers(model)
        inside = split < len(layers)
        self._handle = layers[split].register_forward_pre_hook(self._hook, with_kwargs=True) if inside else None

    def _hook(self, _module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not self.recording:
            return
        hidden = args[0] if args else kwargs["hidden_states"]
        if hidden.shape[0] == 1:
            self.parts.append(hidden[0].detach())

    @contextmanager
    def record(self) -> Iterator[list[torch.Tensor]]:
        self.parts, self.recording = [], True
        try:
            yield self.parts
        finally:
            self.recording = False

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()


def graft(
    model: Any,
    split: int,
    own: Any | None,
    keep: int,
    donor: Any,
    hidden: torch.Tensor | None,
    upto: int,
    new_cache: Any,
) -> Any:
    """This role's cache extended from `keep` to `upto` positions with another role's prefix.

    `own`: this role's cache covering the first `keep` positions (None: start from `new_cache()`); `donor`: the
    other role's cache, covering at least `upto` positions of the same tokens; `hidden`: the hidden states entering
    layer `split` for positions `0…upto` (from the donor's recording). Layers below `split` copy the donor's keys and
    values; layers from `split` on are computed under the active adapter."""
    cache = own if own is not None else new_cache()
    layers = decoder_layers(model)
    for i in range(min(split, len(layers))):
        d = donor.layers[i]
        cache.update(d.keys[:, :, keep:upto].clone(), d.values[:, :, keep:upto].clone(), i)
    if split >= len(layers):
        return cache
    assert hidden is not None
    h = hidden[keep:upto].unsqueeze(0)
    positions = torch.arange(keep, upto, device=h.device).unsqueeze(0)
    embeddings = _backbone(model).rotary_emb(h, position_ids=positions)
    q = upto - keep
    allowed = torch.ones((q, upto), dtype=torch.bool, device=h.device).tril(diagonal=keep)
    mask = torch.zeros((q, upto), dtype=h.dtype, device=h.device).masked_fill_(~allowed, torch.finfo(h.dtype).min)
    with torch.inference_mode():
        for layer in layers[split:]:
            h = layer(
                h,
                attention_mask=mask[None, None],
                position_ids=positions,
                cache=cache,
                use_cache=True,
                position_embeddings=embeddings,
            )
    return cache
