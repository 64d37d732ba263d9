"""jina-reranker-m0: a Qwen2-VL backbone with a score head (``JinaVLForRanking``).

The checkpoint ships its Python class; it is never executed (no ``trust_remote_code``): the
class is re-implemented here from the recipe. Each (query, document) pair becomes the prompt
``**Document**:\\n{document}\\n**Query**:\\n{query}`` (an image is the vision placeholder,
expanded to its visual tokens; with two images, the document's comes first), tokenised with
left padding; token 100 is appended to every row, and the score is
``sigmoid(score_head(last hidden state at that token) - 2.65)``. Pairs with images and pairs
of text are batched apart, so one request may mix text, image and mixed documents.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from omniretrieve.errors import LimitExceededError
from omniretrieve.inputs import ImageInput, Input, MixedInput, TextInput
from omniretrieve.models.base import (
    LoadOptions,
    PairwiseRerankModel,
    ProgressCallback,
    ScoreOutput,
    sigmoid,
    split_scores,
)
from omniretrieve.models.images import load_image
from omniretrieve.models.qwen_vl_inputs import (
    IMAGE_PLACEHOLDER,
    VisualInput,
    expand_image_pads,
    prepare_image,
    strip_vision_tokens,
)
from omniretrieve.models.sources import CheckpointInfo, Family, ModelSource
from omniretrieve.runtime.batching import plan_batches
from omniretrieve.runtime.torch_utils import load_pretrained

log = logging.getLogger("omniretrieve.models")

ARCHITECTURE = "JinaVLForRanking"
PROMPT = "**Document**:\n{document}\n**Query**:\n{query}"
SCORE_TOKEN_ID = 100
LOGIT_BIAS = 2.65
MAX_LENGTH = 10240
MAX_QUERY_LENGTH = 512
MIN_PIXELS = 56 * 56
MAX_PIXELS = 768 * 28 * 28
LEGACY_NAMES = {
    r"^model\.(?!language_model\.|visual\.)": "model.language_model.",
    r"^visual\.": "model.visual.",
}
"""Tensor names of checkpoints saved by transformers 4.x -> this version's module names."""
CPU_WARNING_TOKENS = 8192
"""A request above this many tokens on a CPU warns first when the model has 1B+ parameters."""
CPU_FLOPS = 2e11
"""Rough sustained float32 FLOP/s of a 2-core CPU, for the warning's time estimate."""


def _matches(info: CheckpointInfo) -> bool:
    return ARCHITECTURE in info.architectures


@cache
def ranking_model_class() -> type:
    """``JinaVLForRanking``: Qwen2-VL with the LM head removed and the score MLP added."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    class JinaVLForRanking(Qwen2VLForConditionalGeneration):
        def __init__(self, config: Any) -> None:
            super().__init__(config)
            hidden = config.text_config.hidden_size
            self.lm_head = torch.nn.Identity()
            self.score = torch.nn.Sequential(
                torch.nn.Linear(hidden, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
            )
            self.post_init()

        def rank_logits(self, **inputs: Any) -> Any:
            hidden = self.model(**inputs).last_hidden_state[:, -1]
            return self.score(hidden).squeeze(-1)

    return JinaVLForRanking


@dataclass
class _Pair:
    text: str
    """The prompt, image pads expanded."""
    images: list[VisualInput] = field(default_factory=list)
    truncated: bool = False
    ids: list[int] = field(default_factory=list)


class VlmReranker(PairwiseRerankModel):
    family = "vlm-reranker"
    modalities = frozenset({"text", "image"})

    def __init__(
        self,
        model_id: str,
        model: Any,
        tokenizer: Any,
        image_processor: Any,
        options: LoadOptions,
        *,
        max_length: int,
    ) -> None:
        self.model_id = model_id
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.options = options
        self.max_length = max_length
        self.max_query_length = min(MAX_QUERY_LENGTH, max_length // 2)
        self.max_doc_length = max(max_length - self.max_query_length, self.max_query_length)
        self.parameters = sum(p.numel() for p in model.parameters())
        self.image_token_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")

    @classmethod
    def load(cls, source: ModelSource, options: LoadOptions) -> VlmReranker:
        from transformers import AutoImageProcessor, AutoTokenizer

        assert source.path is not None and source.info is not None
        tokenizer = AutoTokenizer.from_pretrained(source.path, trust_remote_code=False)
        tokenizer.padding_side = "left"
        image_processor = AutoImageProcessor.from_pretrained(source.path, backend="pil")
        model = load_pretrained(
            ranking_model_class(),
            source.path,
            options.device,
            options.dtype,
            require_all=True,  # a Qwen2-VL without the score head is not a reranker
            key_mapping=LEGACY_NAMES,
        )
        text_config = source.info.config.get("text_config") or source.info.config
        positions = int(text_config.get("max_position_embeddings") or MAX_LENGTH)
        return cls(
            source.model_id,
            model,
            tokenizer,
            image_processor,
            options,
            max_length=min(MAX_LENGTH, positions),
        )

    # -- prompts --------------------------------------------------------------------------
    def _side(self, item: Input, limit: int, field_name: str) -> tuple[str, list[Any], bool]:
        """One side's prompt text (images as placeholders), its images and whether its text
        was cut to ``limit`` tokens."""

        text = item.text if isinstance(item, TextInput | MixedInput) else ""
        text = strip_vision_tokens(text)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
        cut = len(ids) > limit
        if cut:
            text = self.tokenizer.decode(ids[:limit])
        images = []
        if isinstance(item, ImageInput | MixedInput):
            image = item if isinstance(item, ImageInput) else item.image
            images.append(load_image(image, field=field_name))
            text = IMAGE_PLACEHOLDER + (f"\n{text}" if text else "")
        return text, images, cut

    def _pair(self, query: tuple[str, list[Any], bool], document: Input, position: int) -> _Pair:
        doc_text, doc_images, cut = self._side(
            document, self.max_doc_length, f"documents[{position}]"
        )
        query_text, query_images, _ = query
        visual = [
            prepare_image(self.image_processor, image, min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS)
            for image in [*doc_images, *query_images]  # the document's image first
        ]
        prompt = PROMPT.format(document=doc_text, query=query_text)
        pair = _Pair(expand_image_pads(prompt, visual), visual, cut)
        ids = self.tokenizer(pair.text, add_special_tokens=True)["input_ids"]
        room = self.max_length - 1  # the score token is appended after truncation
        if len(ids) > room:
            if visual:
                raise LimitExceededError(
                    f"documents[{position}] with the query takes {len(ids) + 1} tokens with its "
                    f"images; the limit is {self.max_length}",
                    field=f"documents[{position}]",
                )
            ids, pair.truncated = ids[:room], True
        pair.ids = [*ids, SCORE_TOKEN_ID]
        return pair

    # -- scoring --------------------------------------------------------------------------
    def score_many(
        self,
        requests: Sequence[tuple[Input, Sequence[Input]]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[ScoreOutput]:
        """Every request's pairs planned into shared batches (a pair's score does not depend
        on the others), split back per request."""
        per_request: list[list[_Pair]] = []
        for query, documents in requests:
            prepared_query = self._side(query, self.max_query_length, "query")
            per_request.append([self._pair(prepared_query, d, i) for i, d in enumerate(documents)])
        pairs = [pair for group in per_request for pair in group]
        self._warn_if_slow(sum(len(p.ids) for p in pairs))
        scores = np.empty(len(pairs), dtype=np.float32)
        groups = [
            [i for i, p in enumerate(pairs) if not p.images],
            [i for i, p in enumerate(pairs) if p.images],
        ]
        for group in groups:
            lengths = [len(pairs[i].ids) for i in group]
            for batch in plan_batches(
                lengths,
                token_budget=self.options.token_budget,
                max_batch_size=self.options.max_batch_size,
            ):
                chosen = [group[i] for i in batch]
                scores[chosen] = self._score_batch([pairs[i] for i in chosen])
                if progress is not None:
                    progress(len(chosen))
        return split_scores(
            scores,
            [p.truncated for p in pairs],
            [len(p.ids) for p in pairs],
            [len(request_pairs) for request_pairs in per_request],
            relevance=lambda raw: sigmoid(raw - LOGIT_BIAS),
        )

    def _score_batch(self, pairs: list[_Pair]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self._logits(pairs)
        return logits.float().cpu().numpy()

    def training_logits(self, query: Input, documents: Sequence[Input]) -> Any:
        """The score logits of ``documents`` for ``query`` with gradients (fine-tuning)."""
        prepared = self._side(query, self.max_query_length, "query")
        return self._logits([self._pair(prepared, d, i) for i, d in enumerate(documents)])

    def _logits(self, pairs: list[_Pair]) -> Any:
        """One batch of pairs, left-padded, through the ranking head (gradients unless turned
        off)."""
        import torch

        device = self.options.device
        longest = max(len(p.ids) for p in pairs)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (longest - len(p.ids)) + p.ids for p in pairs])
        mask = torch.tensor([[0] * (longest - len(p.ids)) + [1] * len(p.ids) for p in pairs])
        inputs: dict[str, Any] = {
            "input_ids": ids.to(device),
            "attention_mask": mask.to(device),
            "mm_token_type_ids": (ids == self.image_token_id).int().to(device),
        }
        visual = [image for pair in pairs for image in pair.images]
        if visual:
            inputs["pixel_values"] = torch.cat([v.pixel_values for v in visual]).to(
                device, dtype=self.model.dtype
            )
            inputs["image_grid_thw"] = torch.cat([v.grid_thw for v in visual]).to(device)
        return self.model.rank_logits(**inputs)

    def _warn_if_slow(self, tokens: int) -> None:
        if self.options.device != "cpu" or self.parameters < 1e9 or tokens <= CPU_WARNING_TOKENS:
            return
        seconds = 2 * self.parameters * tokens / CPU_FLOPS
        log.warning(
            "%s has %.1fB parameters and this request is %d tokens: about %s on this CPU "
            "(use a GPU, fewer or shorter documents, or the offline reranker)",
            self.model_id,
            self.parameters / 1e9,
            tokens,
            _duration(seconds),
        )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.0f} min"


FAMILY = Family(
    name="vlm-reranker",
    kind="reranker",
    modalities=frozenset({"text", "image"}),
    matches=_matches,
    loader=lambda: VlmReranker,
    priority=10,
)
