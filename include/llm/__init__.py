"""LLM signals: chat client (``client``), prompts (``prompts``, ``prompt_registry``), output validation (``output``),
the Airflow connection (``connection``), ``tracing`` and ``evaluation``; docs/strategies.md, docs/llm-tracing.md.
Deliberately empty: the strategy config imports ``prompts`` at DAG parse time without pulling in httpx.
"""
