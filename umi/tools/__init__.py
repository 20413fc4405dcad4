"""umi.tools — tools as data (ToolSpec from api_list, OpenAI, OpenAPI, Python) plus executors that never raise."""

from umi.tools.base import DEFAULT_MAX_OBSERVATION, Executor, Observation, ToolCall, truncate, validate_call
from umi.tools.executors import FaultyExecutor, HTTPExecutor, PythonExecutor, ToolBenchServerExecutor
from umi.tools.replay import ReplayCache, normalise_arguments
from umi.tools.specs import from_api_list, from_api_list_item, from_openai_function, from_openapi, load_tools, tool

__all__ = [
    "DEFAULT_MAX_OBSERVATION",
    "Executor",
    "FaultyExecutor",
    "HTTPExecutor",
    "Observation",
    "PythonExecutor",
    "ReplayCache",
    "ToolBenchServerExecutor",
    "ToolCall",
    "from_api_list",
    "from_api_list_item",
    "from_openai_function",
    "from_openapi",
    "load_tools",
    "normalise_arguments",
    "tool",
    "truncate",
    "validate_call",
]
