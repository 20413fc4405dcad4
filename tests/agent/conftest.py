"""Scripted roles and a small tool box for agent tests."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from umi.models import ScriptedEngine
from umi.models.roles import RoleBinding, Roles
from umi.tools import PythonExecutor, tool


@tool
def search_video(query: str) -> str:
    """Search videos.

    Args:
        query: what to search for
    """
    return f'[{{"id": "v1", "title": "{query} tutorial", "views": 1200, "channel": "c9"}}]'


@tool
def channel_details(channel_id: str) -> str:
    """Details of a channel.

    Args:
        channel_id: the channel id
    """
    return f'{{"id": "{channel_id}", "name": "Paint With Me", "subscribers": 50000}}'


@tool
def broken_video(search: str) -> str:
    """A video API that is down."""
    raise ConnectionError("503 Service Unavailable")


def make_roles(planner: Sequence[str], caller: Sequence[str] = (), summarizer: Sequence[str] = ()) -> Roles:
    return Roles(
        planner=RoleBinding(ScriptedEngine(list(planner), name="planner")),
        caller=RoleBinding(ScriptedEngine(list(caller), name="caller")),
        summarizer=RoleBinding(ScriptedEngine(list(summarizer), name="summarizer")),
    )


@pytest.fixture
def toolbox():
    fns = [search_video, channel_details, broken_video]
    return [f.spec for f in fns], PythonExecutor(fns)
