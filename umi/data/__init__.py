"""umi.data — readers of outside formats, the GLPFT row builder, the tool-disjoint split and statistics."""

from umi.data.build import build_dataset, load_any
from umi.data.io import DataError, Loaded, load_rows, load_trajectories, read_json, write_json, write_rows
from umi.data.rows import ROW_SETS, RowSets, build_rows, iter_steps
from umi.data.split import Split, split_by_tools, tool_components
from umi.data.stats import DataStats, compute_stats, shared
from umi.data.toolbench import chain_to_conversations, load_answer_folder

__all__ = [
    "ROW_SETS",
    "DataError",
    "DataStats",
    "Loaded",
    "RowSets",
    "Split",
    "build_dataset",
    "build_rows",
    "chain_to_conversations",
    "compute_stats",
    "iter_steps",
    "load_answer_folder",
    "load_any",
    "load_rows",
    "load_trajectories",
    "read_json",
    "shared",
    "split_by_tools",
    "tool_components",
    "write_json",
    "write_rows",
]
