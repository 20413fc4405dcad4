"""Grammar-constrained generation for the transformers engine: llguidance token masks as a logits processor.

One `llguidance.LLMatcher` per row of the batch, all compiled once per grammar text (a copy per row), masks
computed for the whole batch in parallel (`LLExecutor`) and applied before temperature / top-p (transformers
runs custom logits processors before its sampling warpers), so greedy and sampled decoding both stay inside the
grammar. A row whose grammar is complete may only write the end-of-sequence token.
"""

from __future__ import annotations

import threading
from typing import Any

from umi.models.base import EngineError


class GrammarCompiler:
    """Compiles grammar texts against one tokenizer, once each (an episode's grammars repeat every step)."""

    def __init__(self, tokenizer: Any, vocab_size: int, *, role: str = "") -> None:
        import llguidance
        import llguidance.hf

        self._llg = llguidance
        self.role = role
        self.vocab_size = vocab_size
        self.tokenizer = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size)
        self.executor = llguidance.LLExecutor()
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()

    def matcher(self, grammar: str) -> Any:
        """A fresh matcher for `grammar` (a copy of the compiled one). A grammar that does not compile is an error
        naming the role and the reason, never a silent unconstrained generation."""
        with self._lock:
            base = self._compiled.get(grammar)
            if base is None:
                base = self._llg.LLMatcher(self.tokenizer, grammar, log_level=0)
                if base.is_error():
                    raise EngineError(
                        f"role {self.role!r}, engine transformers: the grammar does not compile "
                        f"({base.get_error().splitlines()[0][:200]}); fix the grammar or set constrain = false"
                    )
                if len(self._compiled) > 64:
                    self._compiled.clear()
                self._compiled[grammar] = base
        return base.deep_copy()

    def processor(self, grammar: str, batch: int, prompt_width: int) -> Any:
        return GrammarMask([self.matcher(grammar) for _ in range(batch)], self, prompt_width)


def _make_processor_base() -> type:
    from transformers import LogitsProcessor

    return LogitsProcessor


class GrammarMask(_make_processor_base()):  # type: ignore[misc]
    """Masks each row's next-token scores to what its matcher allows; consumes the token chosen at the last step."""

    def __init__(self, matchers: list[Any], compiler: GrammarCompiler, prompt_width: int) -> None:
        import torch
        from llguidance.torch import allocate_token_bitmask

        self.matchers = matchers
        self.compiler = compiler
        self.prompt_width = prompt_width
        self.done = [False] * len(matchers)
        self.bitmask = allocate_token_bitmask(len(matchers), compiler.vocab_size)
        self._bits = torch.arange(32, dtype=torch.int32)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch
        from llguidance.torch import fill_next_token_bitmask_par

        if input_ids.shape[1] > self.prompt_width:
            for i, m in enumerate(self.matchers):
                if self.done[i]:
                    continue
                token = int(input_ids[i, -1])
                if m.is_stopped() or not m.consume_token(token):
                    self.done[i] = True  # end-of-sequence (or padding after it): the row is finished
        active = [(m, i) for i, m in enumerate(self.matchers) if not self.done[i]]
        self.bitmask.fill_(-1)
        if active:
            fill_next_token_bitmask_par(self.compiler.executor, active, self.bitmask)
        allowed = ((self.bitmask.unsqueeze(-1) >> self._bits) & 1).bool().view(len(self.matchers), -1)
        width = scores.shape[1]
        allowed = allowed[:, :width]
        if allowed.shape[1] < width:
            pad = torch.zeros(len(self.matchers), width - allowed.shape[1], dtype=torch.bool)
            allowed = torch.cat([allowed, pad], dim=1)
        return scores.masked_fill(~allowed.to(scores.device), float("-inf"))
