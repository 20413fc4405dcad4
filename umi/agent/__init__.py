"""umi.agent — the α-UMi multi-LLM loop, the single-LLM baseline, DFSDT search, budgets and traces."""

from umi.agent.base import AgentBase
from umi.agent.budget import DROPPED, approx_tokens, fit_history
from umi.agent.dfsdt import DFSDT, diversity_message
from umi.agent.episode import Episode, Status
from umi.agent.multi import MultiLLMAgent
from umi.agent.single import SingleLLMAgent
from umi.agent.trace import TraceRecord, TraceWriter, read_trace

__all__ = [
    "DFSDT",
    "DROPPED",
    "AgentBase",
    "Episode",
    "MultiLLMAgent",
    "SingleLLMAgent",
    "Status",
    "TraceRecord",
    "TraceWriter",
    "approx_tokens",
    "diversity_message",
    "fit_history",
    "read_trace",
]
