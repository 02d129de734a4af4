"""Prompts in MLflow's prompt registry (a local sqlite store): registered from the repo file on first use, a
changed file is a new version (never an overwrite), the alias moves only on promotion, rendering is unchanged."""

from __future__ import annotations

import json
import uuid

import pytest

from include.llm import prompts
from include.llm.prompt_registry import promote, resolve, to_mlflow_template
from include.llm.prompts import load_prompt

VALUES = {"symbol": "TSLA", "session_date": "2025-03-04", "price_reference": 251.5, "price_source": "snapshot_last",
          "features_json": json.dumps({"rsi_14": 22.5}), "previous_json": "{}"}  # fmt: skip


@pytest.fixture
def mlflow_client(session_mlflow_uri, monkeypatch):
    from include.tracking import client

    monkeypatch.setenv("MLFLOW_TRACKING_URI", session_mlflow_uri)
    return client()


def test_placeholders_become_mlflow_variables():
    assert to_mlflow_template("$a ${b} costs $$5 {\"x\": 1}") == '{{a}} {{b}} costs $5 {"x": 1}'


def test_shipped_prompt_renders_the_same_from_the_registry(mlflow_client):
    registered = resolve("signal_v1", "production", mlflow_client)
    assert registered.uri == f"prompts:/signal_v1/{registered.version}" and registered.alias == "production"
    file = load_prompt("signal_v1")
    assert registered.render(VALUES) == file.render(VALUES)
    assert registered.render(VALUES, image_png=b"png") == file.render(VALUES, image_png=b"png")
    assert registered.source_sha == file.version.split("@")[1]


def test_a_changed_file_is_a_new_version_and_the_alias_moves_on_promotion(mlflow_client, tmp_path, monkeypatch):
    monkeypatch.setattr(prompts, "PROMPTS_DIR", tmp_path)
    name = f"p_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.md"
    path.write_text(f"---\nid: {name}\n---\n## system\nS one\n## user\nU $symbol\n")
    first = resolve(name, "production", mlflow_client)
    assert (first.version, first.file_version, first.user) == (1, 1, "U {{symbol}}")
    assert resolve(name, "production", mlflow_client).version == 1  # same content: no new version
    assert len(mlflow_client.search_prompt_versions(name)) == 1

    path.write_text(f"---\nid: {name}\n---\n## system\nS two\n## user\nU $symbol\n")
    second = resolve(name, "production", mlflow_client)
    assert (second.version, second.file_version) == (1, 2)  # registered, but production still serves version 1
    assert second.system == "S one"
    assert mlflow_client.get_prompt_version(name, 1).template[0]["content"] == "S one"  # never overwritten
    assert resolve(name, "latest", mlflow_client).system == "S two"
    assert resolve(name, "staging", mlflow_client).version == 2  # a new alias starts on the file's version

    promote(mlflow_client, name, 2, "production")
    assert resolve(name, "production", mlflow_client).render({"symbol": "X"})[0]["content"] == "S two"
