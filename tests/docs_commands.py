"""The commands and code of the README and docs/, read as a reader would copy them: shell commands from ```bash
blocks (continuation lines joined, comments dropped) and Python from ```python blocks. Shared by the fast docs
test (every command parses, every import resolves) and `make docs-check` (every command runs)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence
    language: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


@dataclass(frozen=True)
class Command:
    block: Block
    text: str  # one command, continuation lines joined
    words: tuple[str, ...]  # shell words, environment assignments dropped

    @property
    def where(self) -> str:
        return self.block.where

    @property
    def python_script(self) -> str | None:
        """The script a `python SCRIPT …` command runs (None for anything else)."""
        for index, word in enumerate(self.words[:-1]):
            if word.endswith(("python", "python3")):
                following = self.words[index + 1]
                return following if following.endswith(".py") else None
        return None

    @property
    def script_arguments(self) -> list[str]:
        script = self.python_script
        return list(self.words[self.words.index(script) + 1:]) if script else []


def blocks(document: Path) -> list[Block]:
    found, language, start, body = [], None, 0, []
    for number, line in enumerate(document.read_text(encoding="utf-8").splitlines(), start=1):
        match = FENCE.match(line)
        if match and language is None:
            language, start, body = match.group(1) or "text", number, []
        elif line.startswith("```") and language is not None:
            found.append(Block(document, start, language, "\n".join(body)))
            language = None
        elif language is not None:
            body.append(line)
    return found


def all_blocks(language: str) -> list[Block]:
    return [block for document in DOCUMENTS for block in blocks(document) if block.language == language]


def commands(block: Block) -> list[Command]:
    """The shell commands of a bash block: `\\` continuations joined, `#` comments removed."""
    joined, pending = [], ""
    for line in block.text.splitlines():
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        joined.append(pending)
        pending = ""
    found = []
    for text in joined:
        words = shlex.split(text, comments=True)
        while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value prefixes
            words = words[1:]
        if words:
            found.append(Command(block, text.strip(), tuple(words)))
    return found


def all_commands() -> list[Command]:
    return [command for block in all_blocks("bash") for command in commands(block)]
