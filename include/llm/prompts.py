"""Prompt templates versioned in the repo (``include/llm/prompts/<id>.md``): front matter + ``## system`` /
``## user`` sections with ``$placeholders``. The file version is ``<id>@<sha256[:12]>``, so an edit that keeps the
id is a different prompt; ``prompt_registry`` registers each file version in MLflow's prompt registry.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

PROMPTS_DIR = Path(__file__).with_name("prompts")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SECTION_RE = re.compile(r"^## (system|user)\s*$", re.MULTILINE)


class PromptError(ValueError):
    """A prompt template is missing or malformed."""


def available_prompts() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PROMPTS_DIR.glob("*.md")))


@dataclass(frozen=True)
class PromptTemplate:
    id: str
    version: str  # "<id>@<sha12>": what gets logged with every LLM call
    description: str
    system: str
    user: str

    def render(self, values: dict[str, Any], image_png: bytes | None = None) -> list[dict[str, Any]]:
        """Chat messages; with ``image_png`` the user message becomes text + a base64 ``image_url`` part."""
        try:
            system = Template(self.system).substitute(values)
            user = Template(self.user).substitute(values)
        except KeyError as exc:
            raise PromptError(f"prompt {self.version} needs a value for ${exc.args[0]}") from None
        return chat_messages(system, user, image_png)


def chat_messages(system: str, user: str, image_png: bytes | None = None) -> list[dict[str, Any]]:
    """System + user messages; with ``image_png`` the user message is text + a base64 ``image_url`` part."""
    if image_png is None:
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    data_url = "data:image/png;base64," + base64.b64encode(image_png).decode("ascii")
    parts = [{"type": "text", "text": user}, {"type": "image_url", "image_url": {"url": data_url}}]
    return [{"role": "system", "content": system}, {"role": "user", "content": parts}]


@functools.lru_cache(maxsize=16)
def _load(path: Path, mtime_ns: int) -> PromptTemplate:
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n"):
        raise PromptError(f"{path.name}: missing front matter (--- id: ... ---)")
    head, sep, body = raw[4:].partition("\n---\n")
    if not sep:
        raise PromptError(f"{path.name}: front matter is not closed by ---")
    meta = dict(line.split(":", 1) for line in head.splitlines() if ":" in line)
    meta = {k.strip(): v.strip() for k, v in meta.items()}
    if meta.get("id") != path.stem:
        raise PromptError(f"{path.name}: front matter id {meta.get('id')!r} must equal the file name")
    chunks = _SECTION_RE.split(body)
    sections = {chunks[i]: chunks[i + 1].strip() for i in range(1, len(chunks) - 1, 2)}
    if set(sections) != {"system", "user"}:
        raise PromptError(f"{path.name}: needs exactly one '## system' and one '## user' section")
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:12]
    return PromptTemplate(path.stem, f"{path.stem}@{digest}", meta.get("description", ""),
                          sections["system"], sections["user"])


def load_prompt(prompt_id: str) -> PromptTemplate:
    if not _ID_RE.match(prompt_id):
        raise PromptError(f"invalid prompt id {prompt_id!r}")
    path = PROMPTS_DIR / f"{prompt_id}.md"
    if not path.is_file():
        raise PromptError(f"unknown prompt {prompt_id!r}; available: {', '.join(available_prompts())}")
    return _load(path, path.stat().st_mtime_ns)
