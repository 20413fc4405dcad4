"""Typed records that cross umi's boundaries.

These are the shapes every package agrees on: a tool as the α-UMi docs line describes it, a trajectory in the
released stage-2 layout, a training row, and one teacher-forced planner step. They are pydantic models so that a
malformed record fails at the edge with the field that is wrong, not deep inside a prompt builder.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "assistant", "caller", "observation", "conclusion"]
ROLES: tuple[str, ...] = ("user", "assistant", "caller", "observation", "conclusion")


class Param(BaseModel):
    """One tool parameter. Richer than α-UMi's `"type, description"` string so nothing is lost on import."""

    name: str
    type: str = "string"
    description: str = ""
    required: bool = False
    enum: list[Any] | None = None
    default: Any = None


class ToolSpec(BaseModel):
    """A tool (one API) as umi knows it: converted once from any source, rendered by `umi.format`."""

    name: str
    description: str = ""
    parameters: list[Param] = Field(default_factory=list)
    # Where the call goes: ToolBench category/tool/api names, an HTTP endpoint, … (executor specific).
    meta: dict[str, Any] = Field(default_factory=dict)

    def param(self, name: str) -> Param | None:
        return next((p for p in self.parameters if p.name == name), None)

    @property
    def required(self) -> list[str]:
        return [p.name for p in self.parameters if p.required]


class ToolDoc(BaseModel):
    """A tool in the released α-UMi layout: `{"Name", "function", "input": {arg: "type, description"}}`.

    Kept verbatim (field order and all) because the tool line the model sees is `json.dumps` of it.
    """

    model_config = ConfigDict(populate_by_name=True)

    Name: str
    function: str = ""
    input: dict[str, str] = Field(default_factory=dict)

    def as_json_dict(self) -> dict[str, Any]:
        return {"Name": self.Name, "function": self.function, "input": self.input}


class Turn(BaseModel):
    """One turn of a trajectory: who spoke (`from`) and what (`value`)."""

    model_config = ConfigDict(populate_by_name=True)

    role: Role = Field(alias="from")
    value: str

    def as_json_dict(self) -> dict[str, str]:
        return {"from": self.role, "value": self.value}


class Trajectory(BaseModel):
    """A solved (or abandoned) task in the released stage-2 layout: `{tools, instruction, conversations}`."""

    tools: list[ToolDoc]
    instruction: str
    conversations: list[Turn]

    @property
    def tool_names(self) -> list[str]:
        return [t.Name for t in self.tools]

    def as_json_dict(self) -> dict[str, Any]:
        return {
            "tools": [t.as_json_dict() for t in self.tools],
            "instruction": self.instruction,
            "conversations": [c.as_json_dict() for c in self.conversations],
        }


class Row(BaseModel):
    """One training example in the released layout: the prompt (`input`) and what the model learns (`target`)."""

    tools: list[dict[str, Any]]
    history: list[dict[str, str]]
    input: str
    target: str

    def as_json_dict(self) -> dict[str, Any]:
        return {"tools": self.tools, "history": self.history, "input": self.input, "target": self.target}


RouteName = Literal["caller", "conclusion", "give up", "none"]


class Step(BaseModel):
    """One teacher-forced planner step of a trajectory (what static evaluation scores).

    `history` is the gold history before the planner turn; `planner` the gold planner text (with its marker);
    `action` the gold caller text (`Action: …\\nAction Input: …`) for a call step; `answer` the gold
    conclusion for a finish step.
    """

    traj: int
    step: int
    tools: list[ToolDoc]
    history: list[Turn]
    planner: str
    route: RouteName
    action: str | None = None
    answer: str | None = None
