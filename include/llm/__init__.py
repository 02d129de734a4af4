"""LLM signals: OpenAI-compatible chat client (``client``), versioned prompt templates (``prompts``), output
validation (``output``), the Airflow connection (``connection``) and a local stub server (``stub_server``).

Deliberately empty: the strategy config imports ``prompts`` at DAG parse time without pulling in httpx.
"""
