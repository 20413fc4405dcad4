"""The prompt budget: one bounded rendering of tool documents and history, shared by training and inference.

Why here: the reference cut training prompts from the left (losing the tool documents and the task first) and
showed the model full-length prompts at run time, so the two never matched. A `PromptBudget` is plain data,
recorded in a training run's manifest; `umi data build --budget` writes rows with it and the agent, static and
live evaluation render their prompts with the manifest's budget, through the same functions, so a row and the
prompt an agent sends at the same step are the same bytes.

The rule, in order (each step is deterministic and needs no tokenizer, so it cannot differ between machines):

1. **Compact tool documents.** ToolBench wraps every API description in the same boilerplate
   (`This is the subfunction for tool "<tool>", you can use this tool.The description of this function is:
   "<text>"`, about 30 tokens an API): it is replaced by `<text>`; the description is cut to
   `description_chars` and each parameter's `"type, description"` to `param_chars` characters.
2. **Observations cut** to `observation_chars` characters (`...` appended), every observation of the history.
3. **Tools ordered** as given, or (`tool_order = "query"`) by relevance to the user's query
   (`umi.format.relevance`, BM25 over each tool's name and description; ties keep the given order).
4. **Oldest observations dropped first** (their text replaced by `DROPPED`) until the whole rendered prompt is at
   most `max_chars` characters; the instruction, the tool documents and every thought and call stay. A history
   that cannot fit even with every observation dropped is returned fully reduced (the engine reports the rest).

5. **Planner hint** (`planner_hint`, off by default; not part of the released format): the planner's prompt ends
   its history with one line naming the APIs the episode has not called yet, in the order the documents are listed
   (`HINT_HEAD` + names). The trained planners' measured failure is naming the previous call's API again; the line
   puts the state they lose track of right before their turn. It sits after the history, so rows of one trajectory
   still share their prefix (packing, prompt caches); the caller's, summarizer's and backbone's prompts are unchanged.

Characters, not tokens: the budget must give the same bytes wherever it is applied, with or without the
model's tokenizer; for SmolLM2's tokenizer the α-UMi rows average about 3.2 characters a token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from umi.format.docs import ToolLike, to_tool_doc
from umi.format.relevance import called_apis, query_of, relevance_order
from umi.schema import ToolDoc, Turn

TOOL_ORDERS = ("given", "query")
DROPPED = "(observation removed to fit the context window)"
_PREFIX = re.compile(r'^This is the subfunction for tool "[^"]*", you can use this tool\.')
_DESCRIPTION = 'The description of this function is: "'


@dataclass(frozen=True)
class PromptBudget:
    """How long a prompt may be and how its parts are bounded (see the module docstring for the rule)."""

    max_chars: int | None = 6000
    observation_chars: int | None = 600
    description_chars: int | None = 256
    param_chars: int | None = 96
    compact_docs: bool = True
    #: "given" (the data's order) or "query" (most relevant to the user's query first, rule 3).
    tool_order: str = "given"
    #: Rule 5: the planner's prompt names the APIs not called yet after the history.
    planner_hint: bool = False

    def __post_init__(self) -> None:
        if self.tool_order not in TOOL_ORDERS:
            raise ValueError(f"prompt_budget.tool_order {self.tool_order!r}: use one of {', '.join(TOOL_ORDERS)}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> PromptBudget | None:
        """A budget from a manifest's `prompt_budget` (None: the unbudgeted, byte-exact rendering)."""
        if data is None:
            return None
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"prompt_budget: unknown field(s) {sorted(unknown)}; known: {list(cls.__dataclass_fields__)}"
            )
        return cls(**data)


#: The default budget of `umi data build --budget` and the shipped roles: about 1,900 SmolLM2 tokens of prompt.
DEFAULT_BUDGET = PromptBudget()


#: How the planner hint's line starts (rule 5).
HINT_HEAD = "APIs not called yet: "


def planner_hint(tools: Sequence[ToolLike], history: Sequence[Turn | dict[str, Any]]) -> str:
    """Rule 5's line (with its leading newline): the names of `tools`, in their order, that no caller turn of
    `history` has called; `none` when every one has been."""
    called = called_apis(history)
    names = [n for n in (to_tool_doc(t).Name for t in tools) if n not in called]
    return "\n" + HINT_HEAD + (", ".join(names) if names else "none") + "."


def _cut(text: str, limit: int | None) -> str:
    return text if limit is None or len(text) <= limit else text[:limit] + "..."


def compact_description(function: str) -> str:
    """The description without ToolBench's per-API boilerplate (unchanged when it has none)."""
    m = _PREFIX.match(function)
    if m is None:
        return function
    rest = function[m.end() :]
    if rest.startswith(_DESCRIPTION):
        rest = rest[len(_DESCRIPTION) :]
        rest = rest[:-1] if rest.endswith('"') else rest
    return rest.strip() or function


def budget_docs(
    tools: Sequence[ToolLike], budget: PromptBudget | None, history: Sequence[Turn | dict[str, Any]] = ()
) -> list[ToolDoc]:
    """Tool documents under `budget` (rules 1 and 3; `history` gives rule 3 its query); unchanged without a budget."""
    docs = [to_tool_doc(t) for t in tools]
    if budget is None:
        return docs
    if budget.tool_order == "query":
        docs = [docs[i] for i in relevance_order(query_of(history), docs)]
    out = []
    for d in docs:
        function = compact_description(d.function) if budget.compact_docs else d.function
        inputs = {k: _cut(v, budget.param_chars) for k, v in d.input.items()}
        out.append(ToolDoc(Name=d.Name, function=_cut(function, budget.description_chars), input=inputs))
    return out


def _as_turn(t: Turn | dict[str, Any]) -> Turn:
    return t if isinstance(t, Turn) else Turn.model_validate(t)


def budget_history(
    history: Sequence[Turn | dict[str, Any]], render: Callable[[list[Turn]], str], budget: PromptBudget | None
) -> list[Turn]:
    """The history under `budget` (rules 2 and 4): `render(turns)` is the whole prompt that must fit."""
    turns = [_as_turn(t) for t in history]
    if budget is None:
        return turns
    if budget.observation_chars is not None:
        turns = [
            Turn.model_validate({"from": "observation", "value": _cut(t.value, budget.observation_chars)})
            if t.role == "observation" and t.value != DROPPED
            else t
            for t in turns
        ]
    if budget.max_chars is None or len(render(turns)) <= budget.max_chars:
        return turns
    for i, t in enumerate(turns):
        if t.role == "observation" and t.value != DROPPED:
            turns[i] = Turn.model_validate({"from": "observation", "value": DROPPED})
            if len(render(turns)) <= budget.max_chars:
                break
    return turns
