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
from types import MappingProxyType
from typing import Any

from omniretrieve.inputs import Input, texts_of
from omniretrieve.models.base import EncodeOutput, LoadOptions, ProgressCallback, check_task
from omniretrieve.models.pooling import last_token, normalized
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.models.transformer_embedder import TransformerEmbedder

DECODER_ARCHITECTURES = frozenset({"Qwen2Model"})
QUERY_TEMPLATE = "<instruct>{instruction}\n<query>{query}"
DEFAULT_MAX_LENGTH = 4096
"""BGE-Code-v1's model-card length (CoIR was evaluated at 2048)."""
MIXED_QA = (
    "Given a question that consists of a mix of text and code snippets, retrieve relevant "
    "answers that also consist of a mix of text and code snippets, and can help answer the "
    "question."
)
CODE_INSTRUCTIONS: dict[str, str] = {
    "Apps": (
        "Given a code contest problem description, retrieve relevant code that can help"
        " solve the problem."
    ),
    "CosQA": "Given a web search query, retrieve relevant code that can help answer the query.",
    "Text2SQL": (
        "Given a question in text, retrieve SQL queries that are appropriate responses "
        "to the question."
    ),
    "CSN": "Given a piece of code, retrieve the document string that summarizes the code.",
    "CSN-CCR": (
        "Given a piece of code segment, retrieve the code segment that is the latter "
        "part of the code."
    ),
    "CodeTrans-DL": (
        "Given a piece of code, retrieve code that is semantically equivalent to the input code."
    ),
    "CodeTrans-Contest": (
        "Given a piece of Python code, retrieve C++ code that is semantically "
        "equivalent to the input code."
    ),
    "StackOverFlow-QA": MIXED_QA,
    "CodeFeedBack-ST": MIXED_QA,
    "CodeFeedBack-MT": (
        "Given a multi-turn conversation history that consists of a mix of text and "
        "code snippets, retrieve relevant answers that also consist of a mix of text "
        "and code snippets, and can help answer the question."
    ),
    "HumanEval": MIXED_QA,
    "MBPP": (
        "Given a textual explanation of code functionality, retrieve the corresponding "
        "code implementation."
    ),
    "DS-1000": MIXED_QA,
    "ODEX": (
        "Given a question, retrieve relevant answers that also consist of a mix of text"
        " and code snippets, and can help answer the question."
    ),
    "RepoEval": (
        "Given a piece of code segment, retrieve the code segment that is the latter "
        "part of the code."
    ),
    "SWE-bench-Lite": (
        "Given a code snippet containing a bug and a natural language description of "
        "the bug or error, retrieve code snippets that demonstrate solutions or fixes "
        "for similar bugs or errors (the desired documents)."
    ),
}
"""BGE-Code-v1's query instructions by task name, exactly as its model card lists them
("Instructions for Evaluation": the CoIR tasks, then the CodeRAG-Bench ones). A named task must
send these strings: other wording gives other vectors."""
INSTRUCTION_ALIASES = {"HummanEval": "HumanEval"}
"""Names as the card spells them, where that differs from the benchmark's."""
DEFAULT_TASK = "CosQA"
"""For queries with no instruction and no checkpoint query prompt: natural-language search
for code."""


def _matches(info: CheckpointInfo) -> bool:
    return bool(set(info.architectures) & DECODER_ARCHITECTURES)


def _dimension(info: CheckpointInfo) -> int | None:
    return int(info.config.get("hidden_size", 0)) or None


def resolve_instruction(instruction: str) -> str:
    """A task name of :data:`CODE_INSTRUCTIONS` (any case) -> the card's string; any other
    text is the instruction itself."""
    wanted = INSTRUCTION_ALIASES.get(instruction, instruction).casefold()
    for name, text in CODE_INSTRUCTIONS.items():
        if name.casefold() == wanted:
            return text
    return instruction


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
    named_instructions = MappingProxyType(
        {**CODE_INSTRUCTIONS, **{a: CODE_INSTRUCTIONS[n] for a, n in INSTRUCTION_ALIASES.items()}}
    )
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
        chosen = resolve_instruction(instruction or DEFAULT_TASK)
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

    def training_vectors(self, inputs: Sequence[Input], *, query: bool) -> Any:
        """Normalised vectors of one batch with gradients (fine-tuning), as :meth:`encode`
        reads queries (``retrieval.query``) and documents."""
        texts = texts_of(inputs, model_id=self.model_id)
        task = "retrieval.query" if query else "retrieval.passage"
        input_ids, _ = self.tokenize([self.prompt(t, task, None) for t in texts])
        return self.pooled_tensors(input_ids, lambda h, m: normalized(last_token(h, m)))


FAMILY = Family(
    name="decoder-embedder",
    kind="embedder",
    modalities=frozenset({"text"}),
    matches=_matches,
    loader=lambda: DecoderEmbedder,
    dimension=_dimension,
)
