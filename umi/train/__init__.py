"""umi.train — GLPFT and its baselines on transformers + PEFT + accelerate.

`run_recipe` trains a recipe (glpft, single, one-stage, multi-task) and writes a run manifest; `train` is one run;
`load_manifest` / `load_role_model` read a run back. See docs/training.md.
"""

from umi.train.config import PRESETS, TrainConfig, preset
from umi.train.loop import TrainResult, train
from umi.train.manifest import Manifest, RoleArtifact, load_manifest, load_role_model
from umi.train.recipes import RECIPES, run_recipe

__all__ = [
    "PRESETS",
    "RECIPES",
    "Manifest",
    "RoleArtifact",
    "TrainConfig",
    "TrainResult",
    "load_manifest",
    "load_role_model",
    "preset",
    "run_recipe",
    "train",
]
