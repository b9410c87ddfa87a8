"""swarmplan: block placement, request routing and simulation for geo-distributed LLM inference swarms."""

__version__ = "0.1.0"
