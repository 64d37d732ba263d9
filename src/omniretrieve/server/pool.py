"""The models a server has loaded, each behind its own batching queue."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from omniretrieve.errors import ModelNotFoundError, OmniRetrieveError, closest_name
from omniretrieve.inputs import Input, TextInput, parse_input, parse_inputs
from omniretrieve.models.base import (
    EmbeddingModel,
    LoadOptions,
    MultiEncodeOutput,
    RerankModel,
    ScoreOutput,
    encode_asked,
)
from omniretrieve.models.registry import Registry, declared_languages, default_registry
from omniretrieve.reranker import RerankResponse, build_rerank_response, instruction_argument
from omniretrieve.runtime.memory import release_free_memory
from omniretrieve.runtime.queue import BatchingQueue
from omniretrieve.server.aliases import check_aliases, served_names
from omniretrieve.server.config import ServerConfig
from omniretrieve.server.default_aliases import ServedModel, default_aliases
from omniretrieve.server.metrics import ServerMetrics
from omniretrieve.text.coverage import language_warnings

log = logging.getLogger("omniretrieve.server")
Loaded = TypeVar("Loaded")


@dataclass(frozen=True)
class EncodeJob:
    inputs: list[Input]
    task: str | None
    instruction: str | None
    outputs: frozenset[str] = frozenset({"dense"})
    """What the request asks per input (sparse and multi-vector outputs: BGE-M3); jobs merge
    only with jobs that ask the same."""


@dataclass(frozen=True)
class RerankJob:
    query: Input
    documents: list[Input]
    instruction: str | None = None
    """For rerankers that take one (checked before the job is queued)."""


@dataclass
class LoadedEmbedder:
    model: EmbeddingModel
    queue: BatchingQueue[EncodeJob, MultiEncodeOutput]
    languages: frozenset[str] | None = None

    def language_warnings(self, inputs: Sequence[Input]) -> list[str]:
        texts = [(i, item.text) for i, item in enumerate(inputs) if isinstance(item, TextInput)]
        return language_warnings(self.model.model_id, self.languages, texts)


@dataclass
class LoadedReranker:
    model: RerankModel
    queue: BatchingQueue[RerankJob, ScoreOutput]

    @property
    def model_id(self) -> str:
        return self.model.model_id

    def rerank(
        self,
        query: Any,
        documents: Any,
        *,
        return_documents: bool = True,
        instruction: str | None = None,
    ) -> RerankResponse:
        """``Reranker.rerank`` through this model's queue (a collection search's rerank stage
        shares model batches with concurrent /v1/rerank requests); blocks until scored."""
        parsed_query = parse_input(query, field="query")
        parsed = parse_inputs(documents, field="documents")
        given = instruction_argument(self.model, instruction).get("instruction")
        job = RerankJob(parsed_query, parsed, given)
        future = self.queue.submit(job, cost=len(parsed), key="rerank")
        return build_rerank_response(
            self.model.model_id,
            future.result(),
            parsed,
            top_n=None,
            return_documents=return_documents,
        )


def encode_merged(
    model: EmbeddingModel, jobs: Sequence[EncodeJob], check: Callable[[], None] = lambda: None
) -> list[MultiEncodeOutput]:
    """Run jobs that share task, instruction and outputs as one model call, then split the
    output. ``check()`` runs before it and after each model batch (it raises to stop: every
    client of these jobs left)."""
    check()
    first = jobs[0]
    multi = encode_asked(
        model,
        [item for job in jobs for item in job.inputs],
        first.outputs,
        task=first.task,
        instruction=first.instruction,
        progress=lambda _: check(),
    )
    return split_outputs(multi, [len(job.inputs) for job in jobs])


def split_outputs(multi: MultiEncodeOutput, sizes: Sequence[int]) -> list[MultiEncodeOutput]:
    """One pass's outputs cut into consecutive parts of ``sizes`` inputs."""
    parts, start = [], 0
    for size in sizes:
        end = start + size
        parts.append(
            MultiEncodeOutput(
                dense=None if multi.dense is None else multi.dense[start:end],
                sparse=None if multi.sparse is None else multi.sparse[start:end],
                multivectors=None if multi.multivectors is None else multi.multivectors[start:end],
                truncated=multi.truncated[start:end],
                token_counts=multi.token_counts[start:end],
            )
        )
        start = end
    return parts


def score_merged(
    model: RerankModel, jobs: Sequence[RerankJob], check: Callable[[], None]
) -> list[ScoreOutput]:
    """Score the jobs' pairs in one model call, checked as :func:`encode_merged`."""
    check()
    pairs = [(job.query, job.documents) for job in jobs]
    extra: dict[str, Any] = {}
    if getattr(model, "takes_instruction", False):
        extra["instructions"] = [job.instruction for job in jobs]
    return list(model.score_many(pairs, progress=lambda _: check(), **extra))


class ModelPool:
    def __init__(
        self, config: ServerConfig, metrics: ServerMetrics, registry: Registry | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.registry = registry or default_registry()
        check_aliases(config.aliases, served_names(config.models, self.registry))
        self.embedders: dict[str, LoadedEmbedder] = {}
        self.rerankers: dict[str, LoadedReranker] = {}
        self.aliases: dict[str, str] = {}
        self.default_aliases: dict[str, str] = {}
        """Clients' default model names -> the served model that answers them."""
        self.ready = threading.Event()
        self.load_error: str | None = None
        self._closed = False
        self._load_lock = threading.Lock()

    def serves_output(self, output: str) -> bool:
        """Whether a configured model returns ``output`` (``sparse``...), known from its
        family without loading it (routes that only such models answer exist only then)."""
        for spec in self.config.models:
            try:
                family = self.registry.resolve(spec).family
            except OmniRetrieveError:
                continue  # the load reports it
            if output in getattr(family.loader(), "outputs", frozenset({"dense"})):
                return True
        return False

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        """Load every configured model (embedders first, so scorers can share them). Safe to
        call from several threads (two lifespans, a test and a background load): the first
        loads, the others wait for it."""
        with self._load_lock:
            if not self.ready.is_set():
                self._load()

    def _load(self) -> None:
        try:
            sources = [(spec, self.registry.resolve(spec)) for spec in self.config.models]
            sources.sort(key=lambda pair: pair[1].family.kind != "embedder")
            options = LoadOptions(device=self.config.device, dtype=self.config.dtype)  # type: ignore[arg-type]
            dtypes = dict(self.config.model_dtypes)
            for spec, source in sources:
                if self._closed:
                    return
                options = replace(options, dtype=dtypes.get(spec, self.config.dtype))  # type: ignore[arg-type]
                if source.family.kind == "embedder":
                    model = source.family.loader().load(source, options)
                    self._add_embedder(spec, model, declared_languages(model, source))
                else:
                    shared = next(iter(self.embedders.values()), None)
                    rerank_options = LoadOptions(
                        device=options.device,
                        dtype=options.dtype,
                        embedding_model=shared.model if shared else None,
                    )
                    self._add_reranker(spec, source.family.loader().load(source, rerank_options))
                log.info("loaded %s (%s)", source.model_id, source.family.name)
            self._add_aliases()
            self.ready.set()
        except OmniRetrieveError as exc:
            self.load_error = exc.message
            log.error("model loading failed: %s", exc.message)
            raise

    def _on_batch(self, model_id: str) -> Any:
        def record(jobs: int, cost: int) -> None:
            self.metrics.batch_requests.labels(model_id).observe(jobs)
            self.metrics.batch_items.labels(model_id).observe(cost)

        return record

    def _add_embedder(
        self, spec: str, model: EmbeddingModel, languages: frozenset[str] | None = None
    ) -> None:
        queue: BatchingQueue[EncodeJob, MultiEncodeOutput] = BatchingQueue(
            model.model_id,
            lambda jobs: encode_merged(model, jobs, queue.check_abandoned),
            max_wait_s=self.config.batch_wait_ms / 1000,
            max_batch_cost=self.config.max_batch_items,
            max_pending_cost=self.config.limits.max_pending_items,
            on_batch=self._on_batch(model.model_id),
            on_idle=release_free_memory,
        )
        self.embedders[model.model_id] = LoadedEmbedder(model, queue, languages)
        self.aliases.update({spec: model.model_id, model.model_id: model.model_id})

    def _add_reranker(self, spec: str, model: RerankModel) -> None:
        # concurrent requests share model batches (their documents within max_batch_items);
        # a family whose scores depend on the whole set scores each request alone
        queue: BatchingQueue[RerankJob, ScoreOutput] = BatchingQueue(
            model.model_id,
            lambda jobs: score_merged(model, jobs, queue.check_abandoned),
            max_wait_s=self.config.batch_wait_ms / 1000,
            max_batch_cost=self.config.max_batch_items,
            max_pending_cost=self.config.limits.max_pending_items,
            on_batch=self._on_batch(model.model_id),
            on_idle=release_free_memory,
        )
        self.rerankers[model.model_id] = LoadedReranker(model, queue)
        self.aliases.update({spec: model.model_id, model.model_id: model.model_id})

    def _add_aliases(self) -> None:
        """The configured names for loaded models (clients' default model names)."""
        for name, target in self.config.aliases:
            model_id = self.aliases.get(target)
            if model_id is None:
                raise ModelNotFoundError(
                    f"alias {name!r} names {target!r}, which is not a loaded model; loaded: "
                    f"{', '.join(self.model_ids())}",
                    field="alias",
                )
            self.aliases[name] = model_id
        if self.config.default_aliases:
            served = [
                ServedModel(m.model.model_id, "embedder", len(m.languages or ()) > 1)
                for m in self.embedders.values()
            ]
            served += [ServedModel(m.model_id, "reranker") for m in self.rerankers.values()]
            self.default_aliases = default_aliases(served, self.aliases)
            self.aliases.update(self.default_aliases)

    def alias_rows(self) -> list[tuple[str, str]]:
        """(name, model id) of every alias, configured ones first."""
        configured = [(name, self.aliases[name]) for name, _ in self.config.aliases]
        return configured + sorted(self.default_aliases.items())

    # -- lookup -------------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        return [*self.embedders, *self.rerankers]

    def _unknown(self, requested: str, kind: str, available: list[str]) -> ModelNotFoundError:
        names = [*available, *(n for n, m in self.aliases.items() if m in available)]
        close = closest_name(requested, names)
        hint = f" Did you mean {close!r}?" if close else ""
        how = (
            f" To answer {requested!r} with a served model, start the server with "
            f"--alias {requested}={available[0]}."
            if available and requested != "(default)"
            else ""
        )
        return ModelNotFoundError(
            f"model {requested!r} is not a loaded {kind}; loaded {kind}s: "
            f"{', '.join(available) or 'none'}.{hint}{how}",
            field="model",
        )

    def _lookup(self, loaded: dict[str, Loaded], requested: str | None, kind: str) -> Loaded:
        if requested is None:
            if not loaded:
                raise self._unknown("(default)", kind, [])
            return next(iter(loaded.values()))
        found = loaded.get(self.aliases.get(requested, requested))
        if found is None:
            raise self._unknown(requested, kind, list(loaded))
        return found

    def embedder(self, requested: str | None) -> LoadedEmbedder:
        """The embedder of that id (or alias), the first loaded one for None, or a 404."""
        return self._lookup(self.embedders, requested, "embedder")

    def reranker(self, requested: str | None) -> LoadedReranker:
        return self._lookup(self.rerankers, requested, "reranker")

    def queue_depths(self) -> dict[str, int]:
        depths = {k: v.queue.pending_cost for k, v in self.embedders.items()}
        depths.update({k: v.queue.pending_cost for k, v in self.rerankers.items()})
        return depths

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking work and finish what was accepted."""
        self._closed = True
        for embedder in self.embedders.values():
            embedder.queue.close(timeout)
        for reranker in self.rerankers.values():
            reranker.queue.close(timeout)
