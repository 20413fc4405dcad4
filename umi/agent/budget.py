"""The token budget: keep the instructions and tool documents, drop the oldest observations first.

The reference left-truncated prompts blindly, which cut the tool documents and the task first. Here the prompt is
rebuilt with the oldest observation texts replaced by a short placeholder until it fits; the instruction, the
tool documents and every thought and call stay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from umi.format import DROPPED  # one placeholder for both fits (umi.format.budget owns it)
from umi.schema import Turn

TokenCounter = Callable[[str], int]


def approx_tokens(text: str) -> int:
    """About four characters a token for English and JSON: used when no tokenizer is at hand."""
    return len(text) // 4 + 1


def fit_history(
    history: Sequence[Turn],
    render: Callable[[list[Turn]], str],
    budget: int | None,
    count: TokenCounter = approx_tokens,
) -> tuple[list[Turn], int]:
    """The history with the fewest oldest observations dropped so `render(history)` fits `budget` tokens.

    Returns the history and how many observations were dropped. When even dropping every observation does not
    fit, the fully reduced history is returned (the engine then reports the overflow).
    """
    turns = list(history)
    if budget is None or count(render(turns)) <= budget:
        return turns, 0
    dropped = 0
    for i, turn in enumerate(turns):
        if turn.role == "observation" and turn.value != DROPPED:
            turns[i] = Turn.model_validate({"from": "observation", "value": DROPPED})
            dropped += 1
            if count(render(turns)) <= budget:
                break
    return turns, dropped
