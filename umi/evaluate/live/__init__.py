"""Live (real-call) evaluation: BFCL multi-turn executable tasks; StableToolBench-protocol tool suites."""
