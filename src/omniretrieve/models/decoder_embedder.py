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

from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import EncodeOutput, LoadOptions, ProgressCallback, check_task
from omniretrieve.models.pooling import last_token, normalized
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.models.transformer_embedder import TransformerEmbedder

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


class DecoderEmbedder(TransformerEmbedder):
    family = "decoder-embedder"
    modalities = frozenset({"text"})
    normalized = True
    query_prompt: str | None = None

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> DecoderEmbedder:
        assert source.path is not None and source.info is not None
        config = source.info.config
        positions = int(config.get("max_position_embeddings") or DEFAULT_MAX_LENGTH)
        model = cls(
            source.model_id,
            cls.load_weights(source.path, options),
            cls.load_tokenizer(source.path, padding_side="right", pad_with_eos=True),
            options,
            dimension=int(config["hidden_size"]),
            max_length=min(DEFAULT_MAX_LENGTH, positions),
        )
        model.query_prompt = checkpoint_query_prompt(source.info)
        return model

    def prompt(self, text: str, task: str | None, instruction: str | None) -> str:
        """The text the model reads: queries wrapped with their instruction."""
        if instruction is None and task != "retrieval.query":
            return text
        if instruction is None and self.query_prompt is not None:
            return self.query_prompt + text
        chosen = CODE_INSTRUCTIONS.get(instruction or DEFAULT_INSTRUCTION, instruction)
        return QUERY_TEMPLATE.format(instruction=chosen, query=text)

    def encode(
        self,
        inputs: Sequence[Input],
        *,
        task: str | None = None,
        instruction: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> EncodeOutput:
        check_task(task)
        texts = texts_of(inputs, model_id=self.model_id)
        input_ids, truncated = self.tokenize([self.prompt(t, task, instruction) for t in texts])
        vectors = self.encode_token_batches(
            input_ids, lambda hidden, mask: normalized(last_token(hidden, mask)), progress
        )
        lengths = [len(ids) for ids in input_ids]
        return EncodeOutput(vectors=vectors, truncated=truncated, token_counts=lengths)


FAMILY = Family(
    name="decoder-embedder",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: DecoderEmbedder,
    dimension=_dimension,
)
