"""Development stand-ins for what cannot be reached from here: the IBKR gateway simulator (``sim.ibkr``), the
OpenAI-compatible LLM stub (``sim.llm_stub``) and synthetic mart histories. Never imported by ``include/``."""
