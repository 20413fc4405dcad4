"""Loading a base for training, wrapping it with LoRA, and folding an adapter into its base (stage 1 → stage 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from umi.models.embedded import cached_file
from umi.train.base import resolve_base
from umi.train.config import TrainConfig


def load_tokenizer(base: str) -> Any:
    """The base's tokenizer, with a pad token (its EOS when it has none: pads carry no loss and no attention)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_base(base))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base: str, *, dtype: torch.dtype = torch.float32) -> Any:
    """The base model in fp32 (bf16 is applied by autocast where the device supports it, never stored)."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(resolve_base(base), dtype=dtype)


def prepare_model(model: Any, config: TrainConfig) -> Any:
    """LoRA (default) or full fine-tuning, and gradient checkpointing when asked."""
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if not config.lora:
        return model
    from peft import PeftModel, get_peft_model

    if config.init_adapter is not None:
        if not (Path(config.init_adapter) / "adapter_config.json").exists():
            raise FileNotFoundError(f"{config.init_adapter}: no LoRA adapter (adapter_config.json) to continue from")
        # The adapter's own LoraConfig (rank, targets, layers) is kept: a further epoch trains the same weights.
        peft_model = PeftModel.from_pretrained(model, config.init_adapter, is_trainable=True)
    else:
        peft_model = get_peft_model(model, _lora_config(model, config))
    if config.gradient_checkpointing:
        peft_model.enable_input_require_grads()
    return peft_model


def _lora_config(model: Any, config: TrainConfig) -> Any:
    """A fresh adapter's LoRA settings: the configured targets this model has, on the configured top layers."""
    from peft import LoraConfig

    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    targets = [t for t in config.lora_targets if t in names]
    if not targets:
        raise ValueError(f"none of the LoRA targets {config.lora_targets} is a module of this model")
    layers: list[int] | None = None
    if config.lora_top_fraction is not None:
        if not 0 < config.lora_top_fraction <= 1:
            raise ValueError(f"lora_top_fraction must be in (0, 1], got {config.lora_top_fraction}")
        depth = int(model.config.num_hidden_layers)
        layers = list(range(depth - max(1, round(depth * config.lora_top_fraction)), depth))
    return LoraConfig(
        task_type="CAUSAL_LM",
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        layers_to_transform=layers,
    )


def save_result(model: Any, tokenizer: Any, out: Path, *, state_dict: dict[str, Any] | None = None) -> Path:
    """Save what a run produced: the LoRA adapter (`out/adapter`) or the full model (`out/model`).

    `state_dict` is the gathered one under ZeRO-3 / FSDP (`accelerator.get_state_dict`), where the module's own
    parameters are shards."""
    from peft import PeftModel

    target = out / ("adapter" if isinstance(model, PeftModel) else "model")
    model.save_pretrained(target, state_dict=state_dict)
    tokenizer.save_pretrained(target)
    return target


def merge_adapter(base: str, adapter: Path, out: Path) -> Path:
    """Fold a LoRA adapter into its base and save the merged model (the stage-1 model stage 2 starts from); two
    `--only` processes merging at once are safe (`cached_file`: the first rename lands)."""
    from peft import PeftModel

    def write(tmp: Path) -> None:
        model = PeftModel.from_pretrained(load_model(base), str(adapter)).merge_and_unload()
        model.save_pretrained(tmp)
        load_tokenizer(base).save_pretrained(tmp)

    return cached_file(out, write)
