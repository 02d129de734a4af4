"""The ``llm_default`` connection -> endpoint; a missing connection is an error, never the stub."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from include.llm.connection import LLMConfigError, endpoint_from_connection, load_endpoint


def conn(**kw):
    base = {"host": None, "schema": None, "port": None, "login": None, "password": None, "extra_dejson": {}}
    return SimpleNamespace(**(base | kw))


def test_full_url_host_model_key_and_vision():
    ep = endpoint_from_connection(conn(host="https://api.openai.com/v1/", password="sk-secret",
                                       extra_dejson={"model": "gpt-4o-mini", "vision": True}))
    assert (ep.base_url, ep.model, ep.api_key, ep.vision) == ("https://api.openai.com/v1", "gpt-4o-mini",
                                                              "sk-secret", True)
    assert "sk-secret" not in repr(ep)


def test_host_port_schema_like_ollama():
    ep = endpoint_from_connection(conn(host="ollama", port=11434, login="llama3.1"))
    assert (ep.base_url, ep.model, ep.api_key, ep.vision) == ("http://ollama:11434/v1", "llama3.1", None, False)


def test_incomplete_connections():
    with pytest.raises(LLMConfigError, match="has no host"):
        endpoint_from_connection(conn(extra_dejson={"model": "m"}))
    with pytest.raises(LLMConfigError, match="names no model"):
        endpoint_from_connection(conn(host="http://vllm:8000/v1"))


def test_airflow_connection_from_the_environment(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LLM_DEFAULT", json.dumps(
        {"conn_type": "http", "host": "http://127.0.0.1:8089/v1", "password": "sk-abcdef", "extra": {"model": "m1"}}))
    ep = load_endpoint()
    assert (ep.base_url, ep.model, ep.api_key) == ("http://127.0.0.1:8089/v1", "m1", "sk-abcdef")
    with pytest.raises(LLMConfigError, match="no LLM connection 'llm_other'"):
        load_endpoint("llm_other")
