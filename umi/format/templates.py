"""The α-UMi prompt templates, byte for byte as the released checkpoints were trained on them.

The typo "assess", the missing newline before each role cue and the blank line after the tool documents are
part of the trained format and must not be "fixed": a released checkpoint sees a different prompt otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Benchmark = Literal["toolbench", "toolalpaca"]

#: End of a turn. Written literally into the text; LLaMA's slow tokenizer maps it to the EOS token.
END_OF_TURN = "</s>"
#: Routing markers the planner ends its thought with.
NEXT_CALLER = "Next: caller."
NEXT_CONCLUSION = "Next: conclusion."
NEXT_GIVE_UP = "Next: give up."
#: How the released planner turns join thought and marker: `<thought>\n Next: caller.` (what `planner_text`
#: writes), and `<thought> Next: caller.` (most turns of the released test set). Nothing else is a marker layout.
MARKER_SEPARATORS = ("\n ", " ")
#: Labels of the caller's action block and of the backbone's conclusion (the parsers find them by these).
ACTION_LABEL = "Action:"
ACTION_INPUT_LABEL = "Action Input:"
#: The caller's text is `CALL_HEAD <name> CALL_MID <input>` (`caller_text` writes it, the caller grammar and the
#: structured caller parse read it).
CALL_HEAD = f"{ACTION_LABEL} "
CALL_MID = f"\n{ACTION_INPUT_LABEL} "
CONCLUSION_LABEL = "conclusion:"
#: What joins the backbone's thought and its action block or conclusion.
BACKBONE_JOIN = "\n"
#: The backbone's give-up answer (`<thought>\nconclusion: give up.`).
GIVE_UP_ANSWER = "give up."
#: Role cues appended after each template (space, label, colon, space).
PLANNER_CUE = " assistant: "
CALLER_CUE = " caller: "
SUMMARIZER_CUE = " conclusion: "
BACKBONE_CUE = " assistant: "
#: Prefix the reference trainer put before every input (never at inference): kept only for `--compat`.
TRAIN_SYSTEM_PREFIX = "system: "

_TOOLBENCH_PLANNER = (
    "You have assess to the following apis:\n{doc}\nThe conversation history is:\n{history}\n"
    "You are the assistant to plan what to do next and whether is caller's or conclusion's turn to answer.\n"
    "Answer with a following format:\n"
    "The thought of the next step, followed by Next: caller or conclusion or give up."
)
_TOOLALPACA_PLANNER = _TOOLBENCH_PLANNER.replace(
    "Next: caller or conclusion or give up.", "Next: caller or conclusion."
)

_CALLER = (
    "You have assess to the following apis:\n{doc}\nThe conversation history is:\n{history}\n"
    "The thought of this step is:\n{thought}\n"
    "Base on the thought make an api call in the following format:\n"
    "Action: the name of api that should be called in this step, should be exactly in [{tool_names}],\n"
    "Action Input: the api call request."
)

_SUMMARIZER = "Make a conclusion based on the conversation history:\n{history}"

_TOOLBENCH_BACKBONE = (
    "You have assess to the following apis:\n{doc}\nThe conversation history is:\n{history}\n"
    "You should answer the action of next step in the following format:\n"
    "The thought to solve the question,\n"
    "Action: the name of api that should be called in this step, should be exactly in [{tool_names}],\n"
    "Action Input: the api call request.\n"
    "Once you think the question is finished, output conclusion: the final answer of the question or give up "
    "if you think you cannot answer this question.\n"
)
_TOOLALPACA_BACKBONE = _TOOLBENCH_BACKBONE.replace(
    "output conclusion: the final answer of the question or give up if you think you cannot answer this question.",
    "output conclusion: the final answer of the question.",
)


@dataclass(frozen=True)
class TemplateSet:
    """The four templates of one benchmark family."""

    planner: str
    caller: str
    summarizer: str
    backbone: str
    allows_give_up: bool


TEMPLATES: dict[str, TemplateSet] = {
    "toolbench": TemplateSet(_TOOLBENCH_PLANNER, _CALLER, _SUMMARIZER, _TOOLBENCH_BACKBONE, True),
    "toolalpaca": TemplateSet(_TOOLALPACA_PLANNER, _CALLER, _SUMMARIZER, _TOOLALPACA_BACKBONE, False),
}


def templates_for(benchmark: str) -> TemplateSet:
    """The template set of a benchmark family; a clear error names the known ones."""
    try:
        return TEMPLATES[benchmark]
    except KeyError:
        raise ValueError(f"unknown prompt family {benchmark!r}; use one of {sorted(TEMPLATES)}") from None
