"""Where code may be cut: the starts of top-level functions and classes.

Python is parsed with the standard library's ``ast`` (decorators stay with their definition);
other languages whose definitions start at the beginning of a line are recognised by their
keywords. Passages then break at these offsets instead of in the middle of a function.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

SUFFIX_LANGUAGES: dict[str, str] = {
    ".py": "python",
    ".js": "javascript",
    ".jsx": "javascript",
    ".mjs": "javascript",
    ".ts": "typescript",
    ".tsx": "typescript",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "java",
    ".cs": "java",
    ".rb": "ruby",
}

DEFINITION_LINES: dict[str, re.Pattern[str]] = {
    "javascript": re.compile(
        r"^(export\s+)?(default\s+)?(async\s+)?(function\b|class\b|(const|let|var)\s+\w+\s*=\s*"
        r"(async\s*)?(\(|function\b))",
        re.M,
    ),
    "go": re.compile(r"^(func\b|type\s+\w+\s+(struct|interface)\b)", re.M),
    "rust": re.compile(
        r"^(pub(\([\w:]+\))?\s+)?(async\s+|unsafe\s+|const\s+)*(fn|impl|struct|enum|trait|mod)\b",
        re.M,
    ),
    "java": re.compile(
        r"^\s{0,4}(@\w+\s*)*((public|private|protected|internal|static|final|abstract|"
        r"sealed|override|open|data)\s+)*(class|interface|enum|record|fun|void|[\w<>\[\],]+\s+\w+\s*\()",
        re.M,
    ),
    "ruby": re.compile(r"^\s{0,2}(def|class|module)\b", re.M),
}
DEFINITION_LINES["typescript"] = DEFINITION_LINES["javascript"]


def language_of(metadata: Mapping[str, Any]) -> str | None:
    """The document's programming language from ``metadata.language`` or its file suffix."""
    language = metadata.get("language")
    if isinstance(language, str) and language.lower() in {*DEFINITION_LINES, "python"}:
        return language.lower()
    suffix = metadata.get("suffix")
    if not isinstance(suffix, str):
        path = metadata.get("path")
        suffix = "." + path.rsplit(".", 1)[-1] if isinstance(path, str) and "." in path else ""
    return SUFFIX_LANGUAGES.get(suffix.lower())


def definition_starts(text: str, language: str | None) -> list[int]:
    """Character offsets where top-level definitions start (sorted, without 0)."""
    if language is None:
        return []
    if language == "python":
        starts = _python_starts(text)
        if starts is not None:
            return starts
        pattern: re.Pattern[str] | None = re.compile(r"^(@|def\b|async\s+def\b|class\b)", re.M)
    else:
        pattern = DEFINITION_LINES.get(language)
    if pattern is None:
        return []
    return sorted({m.start() for m in pattern.finditer(text) if m.start() > 0})


def _python_starts(text: str) -> list[int] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    line_offsets = [0]
    for line in text.splitlines(keepends=True):
        line_offsets.append(line_offsets[-1] + len(line))
    starts = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first_line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            offset = line_offsets[first_line - 1]
            if offset > 0:
                starts.add(offset)
    return sorted(starts)
