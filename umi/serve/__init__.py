"""umi.serve — HTTP servers: the StableToolBench-compatible virtual API server (`tool_server`), and the α-UMi
agent server (`agent_server`: the OpenAI-compatible chat endpoint, server-side runs, the trace viewer)."""
