"""The LLM prompts in MLflow's prompt registry: repo files registered as versions on first use, served by alias
(``prompts:/<id>@<alias>``) that only ``promote`` moves. Versions and aliases: docs/llm-tracing.md.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from string import Template
from typing import TYPE_CHECKING, Any

from include.llm.prompts import PromptError, PromptTemplate, chat_messages, load_prompt

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import PromptVersion

log = logging.getLogger(__name__)
SOURCE_SHA_TAG = "source_sha256_12"  # the first 12 hex digits of the file's sha256 (PromptTemplate.version)
SOURCE_FILE_TAG = "source_file"
LATEST = "latest"
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def to_mlflow_template(text: str) -> str:
    """``$name`` / ``${name}`` placeholders -> MLflow's ``{{name}}``; ``$$`` -> ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group("escaped") is not None:
            return "$"
        name = match.group("named") or match.group("braced")
        if name is None:
            raise PromptError(f"invalid placeholder at {match.group(0)!r}")
        return "{{" + name + "}}"

    return Template.pattern.sub(sub, text)


@dataclass(frozen=True)
class RegisteredPrompt:
    """One version of a registered prompt, as the strategy renders it."""

    name: str
    version: int
    alias: str
    system: str  # MLflow template text ({{placeholders}})
    user: str
    source_sha: str | None  # the repo file content it was registered from
    file_version: int  # the version holding the repo file's current content (may differ from ``version``)

    @property
    def uri(self) -> str:
        return f"prompts:/{self.name}/{self.version}"

    @property
    def label(self) -> str:
        """What signals and traces record as ``prompt_version``."""
        return f"{self.name}/{self.version}"

    def render(self, values: dict[str, Any], image_png: bytes | None = None) -> list[dict[str, Any]]:
        def fill(text: str) -> str:
            def sub(match: re.Match[str]) -> str:
                if match.group(1) not in values:
                    raise PromptError(f"prompt {self.uri} needs a value for {{{{{match.group(1)}}}}}")
                return str(values[match.group(1)])

            return _VARIABLE.sub(sub, text)

        return chat_messages(fill(self.system), fill(self.user), image_png)


def _sha(version: PromptVersion) -> str | None:
    return (version.tags or {}).get(SOURCE_SHA_TAG)


def sync_file(client: MlflowClient, template: PromptTemplate) -> PromptVersion:
    """The registered version holding ``template``'s content, registering it as a new version if there is none."""
    sha = template.version.rsplit("@", 1)[1]
    if client.get_prompt(template.id) is not None:
        for version in client.search_prompt_versions(template.id):
            if _sha(version) == sha:
                return version
    chat = [{"role": "system", "content": to_mlflow_template(template.system)},
            {"role": "user", "content": to_mlflow_template(template.user)}]
    registered = client.register_prompt(
        template.id, chat, commit_message=f"from include/llm/prompts/{template.id}.md @ {sha}",
        tags={SOURCE_SHA_TAG: sha, SOURCE_FILE_TAG: f"include/llm/prompts/{template.id}.md"},
    )
    log.info("registered prompt %s version %s from its repo file (%s)", template.id, registered.version, sha)
    return registered


def _served(client: MlflowClient, name: str, alias: str, file_version: PromptVersion) -> PromptVersion:
    from mlflow.exceptions import MlflowException

    if alias == LATEST:
        return client.load_prompt(f"prompts:/{name}@{LATEST}")
    try:
        return client.get_prompt_version_by_alias(name, alias)
    except MlflowException:  # first use of this alias: it starts on the repo file's version
        client.set_prompt_alias(name, alias, int(file_version.version))
        log.info("prompt alias %s@%s -> version %s", name, alias, file_version.version)
        return file_version


def resolve(prompt_id: str, alias: str, client: MlflowClient) -> RegisteredPrompt:
    """The version behind ``prompts:/<prompt_id>@<alias>``, after registering the repo file's content if new."""
    file_version = sync_file(client, load_prompt(prompt_id))
    served = _served(client, prompt_id, alias, file_version)
    if int(served.version) != int(file_version.version):
        log.warning("prompt %s@%s serves version %s; the repo file is version %s (promote it to use it)",
                    prompt_id, alias, served.version, file_version.version)
    return _registered(served, alias, int(file_version.version))


def resolve_version(prompt_id: str, version: int, client: MlflowClient) -> RegisteredPrompt:
    """A given version (e.g. to evaluate a candidate before promoting it), after syncing the repo file."""
    file_version = sync_file(client, load_prompt(prompt_id))
    served = client.get_prompt_version(prompt_id, int(version))
    if served is None:
        raise PromptError(f"prompt {prompt_id} has no version {version}")
    return _registered(served, f"v{version}", int(file_version.version))


def _registered(served: PromptVersion, alias: str, file_version: int) -> RegisteredPrompt:
    prompt_id = served.name
    template = served.template
    if not isinstance(template, list):
        raise PromptError(f"prompt {prompt_id} version {served.version} is not a chat template")
    parts = {m["role"]: m["content"] for m in template}
    if set(parts) != {"system", "user"}:
        raise PromptError(f"prompt {prompt_id} version {served.version} needs one system and one user message")
    return RegisteredPrompt(prompt_id, int(served.version), alias, parts["system"], parts["user"], _sha(served),
                            file_version)


def promote(client: MlflowClient, prompt_id: str, version: int, alias: str) -> None:
    """Point ``alias`` at ``version`` (e.g. after its evaluation beat the current one)."""
    client.set_prompt_alias(prompt_id, alias, int(version))
