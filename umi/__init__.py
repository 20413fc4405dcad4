"""umi — α-UMi multi-LLM tool-learning agents built from small open models."""

__version__ = "0.1.0"
