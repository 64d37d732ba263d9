"""LLM yes/no rerankers: a causal language model asked whether a document answers a query,
its score the model's "yes" read at the last position. Recognised from the checkpoint, never
its name: a causal LM of an architecture below without sentence-transformers files (an
embedding checkpoint of the same architecture carries ``modules.json``; it is no reranker).
Each architecture has its publisher's recipe, as their reference code computes it (see
``docs/models.md``); batches are padded on the left, so every pair's last position is its own.

- ``Qwen3ForCausalLM`` (Qwen3-Reranker, its model card): ``prefix + body + suffix`` in token
  ids; the prefix is the system turn (``Judge whether the Document meets the requirements
  based on the Query and the Instruct provided. Note that the answer can only be "yes" or
  "no".``) and the user turn's opening, the body ``<Instruct>: {instruction}\n<Query>:
  {query}\n<Document>: {document}`` tokenised without special tokens and cut at its end to
  ``max_length - len(prefix) - len(suffix)`` (max_length 8192: the document goes first), the
  suffix the assistant turn with an empty think block; score = softmax over the logits of
  ``no`` and ``yes``: P(yes).
- ``GemmaForCausalLM`` / ``Gemma2ForCausalLM`` (BAAI's bge-reranker-v2-gemma, its model card's
  ``get_inputs`` as FlagEmbedding's ``FlagLLMReranker`` runs it): ``[bos] + "A: {query}"``
  (cut to 3/4 of max_length) then ``"\n" + "B: {passage}"`` (the pair cut to max_length,
  1024, the passage only), then ``"\n" + prompt``, the prompt being the instruction (default
  ``Given a query A and a passage B, determine whether the passage contains an answer to the
  query by providing a prediction of either 'Yes' or 'No'.``); score = sigmoid of the logit of
  ``Yes`` (FlagEmbedding's ``normalize=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omniretrieve.errors import InputError
from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import (
    LoadOptions,
    PairwiseRerankModel,
    ProgressCallback,
    ScoreOutput,
    score_token_batches,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.runtime.torch_utils import load_pretrained

QWEN3_ARCHITECTURES = frozenset({"Qwen3ForCausalLM"})
GEMMA_ARCHITECTURES = frozenset({"GemmaForCausalLM", "Gemma2ForCausalLM"})
SENTENCE_TRANSFORMERS_FILES = frozenset({"modules.json", "config_sentence_transformers.json"})
PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query "
    'and the Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n'
    "<|im_start|>user\n"
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
BODY = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
DEFAULT_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
DEFAULT_MAX_LENGTH = 8192
BAAI_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the "
    "query by providing a prediction of either 'Yes' or 'No'."
)
BAAI_MAX_LENGTH = 1024
LARGE_ON_CPU = 1_000_000_000
"""Parameters above which a CPU load warns that scoring will be slow."""


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & (QWEN3_ARCHITECTURES | GEMMA_ARCHITECTURES)) and not (
        info.files & SENTENCE_TRANSFORMERS_FILES
    )


class QwenRecipe:
    """Qwen3-Reranker's prompt and answer (module docstring)."""

    default_instruction = DEFAULT_INSTRUCTION

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = min(DEFAULT_MAX_LENGTH, max_length)
        self.prefix = tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix = tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.no_id, self.yes_id = (tokenizer.convert_tokens_to_ids(t) for t in ("no", "yes"))
        self.answer_ids = (self.no_id, self.yes_id)

    def pair_ids(self, instruction: str, query: str, document: str) -> tuple[list[int], bool]:
        body = self.tokenizer.encode(
            BODY.format(instruction=instruction, query=query, document=document),
            add_special_tokens=False,
        )
        room = self.max_length - len(self.prefix) - len(self.suffix)
        return self.prefix + body[:room] + self.suffix, len(body) > room

    def raw_scores(self, logits: Any) -> Any:
        """The log-odds of "yes" against "no": the softmax over the two is its sigmoid."""
        return logits[:, self.yes_id].float() - logits[:, self.no_id].float()


class BaaiRecipe:
    """bge-reranker-v2-gemma's prompt and answer (module docstring)."""

    default_instruction = BAAI_PROMPT

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = min(BAAI_MAX_LENGTH, max_length)
        self.separator = tokenizer.encode("\n", add_special_tokens=False)
        self.yes_id = tokenizer.encode("Yes", add_special_tokens=False)[0]
        self.answer_ids = (self.yes_id,)
        if tokenizer.bos_token_id is None:
            raise InputError("the tokenizer has no bos token, which the prompt starts with")

    def pair_ids(self, instruction: str, query: str, document: str) -> tuple[list[int], bool]:
        encode = self.tokenizer.encode
        whole_query = encode(f"A: {query}", add_special_tokens=False)
        query_ids = whole_query[: self.max_length * 3 // 4]
        passage = encode(f"B: {document}", add_special_tokens=False)
        first = [self.tokenizer.bos_token_id] + query_ids
        second = (self.separator + passage)[: max(0, self.max_length - len(first))]
        prompt = encode(instruction, add_special_tokens=False)
        cut = len(query_ids) < len(whole_query) or len(second) < len(self.separator + passage)
        return first + second + self.separator + prompt, cut

    def raw_scores(self, logits: Any) -> Any:
        """The "Yes" logit (FlagEmbedding's ``normalize=False``; its sigmoid is the score)."""
        return logits[:, self.yes_id].float()


class YesNoReranker(PairwiseRerankModel):
    family = "llm-reranker"
    modalities = frozenset({"text"})
    takes_instruction = True

    def __init__(
        self, model_id: str, model: Any, recipe: QwenRecipe | BaaiRecipe, options: LoadOptions
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.recipe = recipe
        self.tokenizer = recipe.tokenizer
        self.options = options
        unknown = self.tokenizer.unk_token_id
        if any(i is None or i == unknown for i in recipe.answer_ids):
            raise InputError(
                f"{model_id}: its tokenizer lacks the answer tokens its recipe reads",
                field="model",
            )

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> YesNoReranker:
        import logging

        from transformers import AutoModelForCausalLM, AutoTokenizer

        assert source.path is not None and source.info is not None
        tokenizer = AutoTokenizer.from_pretrained(source.path, padding_side="left")
        model = load_pretrained(AutoModelForCausalLM, source.path, options.device, options.dtype)
        parameters = sum(p.numel() for p in model.parameters())
        if options.device == "cpu" and parameters > LARGE_ON_CPU:
            logging.getLogger(__name__).warning(
                "%s has %.1fB parameters: scoring on a CPU takes seconds per pair; use a GPU "
                "(--device cuda) for anything but a trial",
                source.model_id,
                parameters / 1e9,
            )
        positions = int(source.info.config.get("max_position_embeddings") or DEFAULT_MAX_LENGTH)
        gemma = bool(set(source.info.architectures) & GEMMA_ARCHITECTURES)
        recipe = (BaaiRecipe if gemma else QwenRecipe)(tokenizer, positions)
        return cls(source.model_id, model, recipe, options)

    def pair_ids(self, instruction: str, query: str, document: str) -> tuple[list[int], bool]:
        """One pair's token ids, and whether it was cut to fit."""
        return self.recipe.pair_ids(instruction, query, document)

    def score(
        self,
        query: Input,
        documents: Sequence[Input],
        *,
        progress: ProgressCallback | None = None,
        instruction: str | None = None,
    ) -> ScoreOutput:
        return self.score_many([(query, documents)], progress=progress, instructions=[instruction])[
            0
        ]

    def score_many(
        self,
        requests: Sequence[tuple[Input, Sequence[Input]]],
        *,
        progress: ProgressCallback | None = None,
        instructions: Sequence[str | None] | None = None,
    ) -> list[ScoreOutput]:
        """Every request's pairs in shared batches (each pair is scored on its own); each
        request with its instruction (None or empty: the default one)."""

        def forward(inputs: dict[str, Any]) -> Any:
            # the answer is read at the last position (left padding): no logits elsewhere
            last = self.model(**inputs, logits_to_keep=1).logits[:, -1, :]
            return self.recipe.raw_scores(last)

        pairs: list[dict[str, list[int]]] = []
        truncated: list[bool] = []
        sizes: list[int] = []
        for position, (query, documents) in enumerate(requests):
            given = instructions[position] if instructions is not None else None
            instruction = given or self.recipe.default_instruction
            query_text = texts_of([query], model_id=self.model_id, field="query")[0]
            texts = texts_of(documents, model_id=self.model_id, field="documents")
            for text in texts:
                ids, cut = self.pair_ids(instruction, query_text, text)
                pairs.append({"input_ids": ids})
                truncated.append(cut)
            sizes.append(len(texts))
        return score_token_batches(
            pairs, truncated, sizes, self.tokenizer, self.options, forward, progress
        )


FAMILY = Family(
    name="llm-reranker",
    kind="reranker",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: YesNoReranker,
)
