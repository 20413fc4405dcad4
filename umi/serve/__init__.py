"""umi.serve — HTTP servers: the StableToolBench-compatible virtual API server."""
