"""The two scenarios of the α-UMi announcement, offline (`umi demo`)."""

from umi.demo.scenarios import SCENARIOS, Scenario, build_scenario, scripted_roles

__all__ = ["SCENARIOS", "Scenario", "build_scenario", "scripted_roles"]
