"""Decoder embedders (BGE-Code-v1: a bare ``Qwen2Model``): last-token pooling, L2-normalised.

Queries carry an instruction, ``<instruct>{instruction}\\n<query>{query}``; documents carry
none. ``instruction`` picks one of :data:`CODE_INSTRUCTIONS` by name or is used as given; with
``task="retrieval.query"`` and no instruction, the checkpoint's own query prompt
(``config_sentence_transformers.json``) or ``text2code``. The tokenizer is loaded with the
standard classes (never the hub repo's remote code) and keeps its own special-token settings.
Batches are padded on the right and each row pooled at its last real token, which is what one
unpadded sequence gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import (
    EmbeddingModel,
    EncodeOutput,
    LoadOptions,
    ProgressCallback,
    check_task,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource

DECODER_ARCHITECTURES = frozenset({"Qwen2Model"})
QUERY_TEMPLATE = "<instruct>{instruction}\n<query>{query}"
DEFAULT_MAX_LENGTH = 4096
"""BGE-Code-v1's model-card length (CoIR was evaluated at 2048)."""
CODE_INSTRUCTIONS: dict[str, str] = {
    "text2code": "Given a question in natural language, retrieve code that answers it.",
    "web-query": "Given a web search query, retrieve code that matches it.",
    "text2sql": "Given a question in text, retrieve the SQL query that answers it.",
    "code2text": "Given a piece of code, retrieve the text that describes it.",
    "code2code": "Given a piece of code, retrieve code that does the same thing.",
    "code-completion": "Given the start of some code, retrieve the code that completes it.",
    "code-qa": "Given a programming question, retrieve the answer that solves it.",
}
"""Named query instructions for code retrieval tasks (CoIR's task types, in our words; pass
the model card's exact wording as ``instruction`` to reproduce its numbers)."""
DEFAULT_INSTRUCTION = "text2code"


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & DECODER_ARCHITECTURES)


def _dimension(info: CheckpointInfo) -> int | None:
    return int(info.config.get("hidden_size", 0)) or None


def checkpoint_query_prompt(info: CheckpointInfo) -> str | None:
    """The query prompt a checkpoint declares in config_sentence_transformers.json."""
    config = info.read_json("config_sentence_transformers.json")
    prompts = config.get("prompts") if isinstance(config, dict) else None
    if not isinstance(prompts, dict):
        return None
    prompt = prompts.get("query") or prompts.get("retrieval.query")
    return prompt if isinstance(prompt, str) and prompt else None


class DecoderEmbedder(EmbeddingModel):
    family = "decoder-embedder"
    modalities = frozenset({"text"})
    normalized = True

    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        options: LoadOptions,
        *,
        dimension: int,
        max_length: int,
        query_prompt: str | None,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.dimension = dimension
        self.max_length = max_length
        self.query_prompt = query_prompt

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> DecoderEmbedder:
        from transformers import AutoModel, AutoTokenizer

        from omniretrieve.runtime.torch_utils import load_pretrained

        assert source.path is not None and source.info is not None
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        model = load_pretrained(AutoModel, source.path, options.device, options.dtype)
        config = source.info.config
        positions = int(config.get("max_position_embeddings") or DEFAULT_MAX_LENGTH)
        return cls(
            source.model_id,
            model,
            tokenizer,
            options,
            dimension=int(config["hidden_size"]),
            max_length=min(DEFAULT_MAX_LENGTH, positions),
            query_prompt=checkpoint_query_prompt(source.info),
        )

    def prompt(self, text: str, task: str | None, instruction: str | None) -> str:
        """The text the model reads: queries wrapped with their instruction."""
        if instruction is None and task != "retrieval.query":
            return text
        if instruction is None and self.query_prompt is not None:
            return self.query_prompt + text
        chosen = CODE_INSTRUCTIONS.get(instruction or DEFAULT_INSTRUCTION, instruction)
        return QUERY_TEMPLATE.format(instruction=chosen, query=text)

    def _tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        full = self.tokenizer(list(texts), truncation=False)["input_ids"]
        cut = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        return cut["input_ids"], [len(ids) > self.max_length for ids in full]

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in self._tokenize(texts)[0]]

    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        import torch

        from omniretrieve.models.encoder import encode_token_batches

        check_task(task)
        texts = texts_of(inputs, model_id=self.model_id)
        prompted = [self.prompt(text, task, instruction) for text in texts]
        input_ids, truncated = self._tokenize(prompted)
        vectors = encode_token_batches(
            self.model,
            self.tokenizer,
            input_ids,
            self.options,
            self.dimension,
            lambda hidden, mask: torch.nn.functional.normalize(
                last_token(hidden, mask).float(), dim=-1
            ),
            progress,
        )
        lengths = [len(ids) for ids in input_ids]
        return EncodeOutput(vectors=vectors, truncated=truncated, token_counts=lengths)


def last_token(hidden: Any, mask: Any) -> Any:
    """Each row's hidden state at its last real token (the last column when every row ends
    there, as with left padding)."""
    import torch

    if bool(mask[:, -1].all()):
        return hidden[:, -1]
    last = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


FAMILY = Family(
    name="decoder-embedder",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: DecoderEmbedder,
    dimension=_dimension,
)
