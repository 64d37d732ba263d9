"""Request and response bodies of the Jina, OpenAI and Cohere shapes (pydantic)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    WithJsonSchema,
    field_validator,
)

from omniretrieve.embedding_types import EmbeddingType
from omniretrieve.index.settings import MAX_EMBEDDERS

# Items are validated by omniretrieve.inputs (errors name the item: "documents[3]"); the
# schemas below document their shape for clients and the OpenAPI page.
_ITEM_OBJECT = {
    "type": "object",
    "properties": {
        "text": {"type": "string"},
        "image": {"type": "string", "description": "http(s) URL, data URI or raw base64"},
    },
    "additionalProperties": False,
}
_ITEM = {"anyOf": [{"type": "string"}, _ITEM_OBJECT]}
ItemField = Annotated[Any, WithJsonSchema(_ITEM)]
ItemList = Annotated[list[Any], WithJsonSchema({"type": "array", "items": _ITEM})]
EmbeddingInput = Annotated[
    str | list[Any],
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string"},
                {
                    "type": "array",
                    "items": {
                        "anyOf": [
                            {"type": "string"},
                            _ITEM_OBJECT,
                            {"type": "integer"},
                            {"type": "array", "items": {"type": "integer"}},
                        ]
                    },
                },
            ]
        }
    ),
]


class EmbeddingsRequest(BaseModel):
    """Jina's and OpenAI's embeddings request in one body."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, description="Loaded model id; the default embedder if omitted")
    input: EmbeddingInput = Field(
        description="Texts, {text}/{image}/{text,image} objects, or OpenAI token-id arrays"
    )
    task: str | None = Field(None, description="retrieval.query, retrieval.passage, ...")
    instruction: str | None = Field(
        None, description="Instruction for instruction-following models"
    )
    dimensions: StrictInt | None = Field(None, ge=1, description="Matryoshka truncation")
    embedding_type: EmbeddingType | None = Field(None, description="Jina/Cohere output type")
    encoding_format: Literal["float", "base64"] | None = Field(
        None, description="OpenAI output type"
    )
    normalized: StrictBool = True
    truncate: StrictBool = Field(
        True, description="False: texts over the model's length are an error"
    )
    late_chunking: StrictBool = Field(
        False, description="Jina's late chunking: not supported here (true is a 422)"
    )
    return_multivector: StrictBool = Field(
        False,
        description="Also return one vector per token as data[i].embeddings (Jina's shape; "
        "models with a multi-vector head: BGE-M3), in embedding_type",
    )
    return_sparse: StrictBool = Field(
        False,
        description="Also return learned token weights as data[i].sparse ({indices, values, "
        "tokens}; models with a sparse head: BGE-M3)",
    )
    user: str | None = None

    @field_validator("late_chunking")
    @classmethod
    def _no_late_chunking(cls, value: bool) -> bool:
        """Never silently ignored: a client asking for it is told it is not done."""
        if value:
            raise ValueError(
                "late chunking is not supported: send the chunks as separate inputs (each is "
                "embedded on its own)"
            )
        return value


class SparseData(BaseModel):
    indices: list[int]
    values: list[float]
    tokens: list[str] | None = None


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | list[int] | str | None = Field(
        None, description="Left out for models with no single-vector output (ColPali)"
    )
    truncated: bool = False
    embeddings: list[list[float]] | list[list[int]] | list[str] | None = Field(
        None, description="With return_multivector: one vector per token"
    )
    sparse: SparseData | None = Field(None, description="With return_sparse: token weights")


class EmbeddingsUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[EmbeddingData]
    usage: EmbeddingsUsage
    warnings: list[str] | None = Field(
        None, description="E.g. inputs in a language the model was not trained on"
    )


RERANK_INSTRUCTION = (
    "For rerankers that take one (LLM yes/no rerankers such as Qwen3-Reranker; default: the "
    "model's own); the others refuse a non-empty one"
)
RAW_SCORES = (
    "Also return each result's raw_score: the model's score before its last squashing (a "
    "logit; TEI's raw_scores)"
)


class RerankRequest(BaseModel):
    """Jina's rerank request (also Cohere's v1 shape)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    query: ItemField
    documents: ItemList
    top_n: StrictInt | None = Field(None, ge=1)
    return_documents: StrictBool = True
    instruction: str | None = Field(None, description=RERANK_INSTRUCTION)
    raw_scores: StrictBool = Field(False, description=RAW_SCORES)


class CohereRerankRequest(BaseModel):
    """Cohere's v2 rerank request."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    query: str
    documents: Annotated[
        list[Any],
        WithJsonSchema({"type": "array", "items": {"anyOf": [{"type": "string"}, _ITEM_OBJECT]}}),
    ]
    top_n: StrictInt | None = Field(None, ge=1)
    max_tokens_per_doc: StrictInt | None = Field(
        None, ge=1, description="Accepted; documents are cut at the model's own maximum length"
    )
    return_documents: StrictBool = False
    instruction: str | None = Field(None, description=RERANK_INSTRUCTION)
    raw_scores: StrictBool = Field(False, description=RAW_SCORES)


class RerankResultBody(BaseModel):
    index: int
    relevance_score: float
    raw_score: float | None = None
    document: dict[str, Any] | None = None


class ErrorBody(BaseModel):
    type: str
    message: str
    field: str | None = None
    param: str | None = Field(None, description="The field again, as OpenAI's clients read it")
    code: str | None = Field(None, description="The type again, as OpenAI's clients read it")


class ErrorResponse(BaseModel):
    error: ErrorBody
    detail: str = Field(
        ..., description="The message again, as Jina's and FastAPI's clients read it"
    )


class CreateCollectionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    embedders: list[str] | None = Field(
        None,
        max_length=MAX_EMBEDDERS,
        description="Loaded embedder ids (a repeated one counts once); default: the first",
    )
    quantization: Literal["float", "int8", "binary"] = "float"
    language: str = Field(
        "auto",
        description="BM25 analysis: auto (each document and query in its own language) or one "
        "language for all",
    )
    fusion: Literal["auto", "zscore", "rrf", "zscore-adaptive"] = Field(
        "auto",
        description="auto: the fusion and reranker mix the collection fits on pseudo-queries "
        "from its own documents (refit as it grows); or one fixed method with equal weights",
    )
    vector_store: Literal["faiss", "milvus"] = Field(
        "faiss", description="milvus: dense search in the server's configured Milvus"
    )
    sparse: Literal["local", "milvus"] = Field(
        "local",
        description="milvus: BM25 in Milvus too (its full-text search; needs vector_store "
        "milvus), so the server keeps no BM25 index",
    )
    storage: Literal["folder", "milvus"] = Field(
        "folder",
        description="milvus: the documents live in Milvus alone (needs vector_store and sparse "
        "milvus); the server's memory no longer grows with the collection",
    )
    ocr_images: StrictBool = Field(
        True, description="Index the text OCR reads in documents' images (for BM25 and text models)"
    )


class UpsertRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    documents: Annotated[
        list[Any],
        WithJsonSchema(
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "text": {"type": "string"},
                        "title": {"type": "string"},
                        "image": {"type": "string"},
                        "metadata": {"type": "object"},
                    },
                    "required": ["id"],
                },
            }
        ),
    ]

    @field_validator("documents")
    @classmethod
    def _string_ids(cls, documents: list[Any]) -> list[Any]:
        """Ids are strings over HTTP (a number is not turned into one silently)."""
        for position, document in enumerate(documents):
            if (
                isinstance(document, dict)
                and "id" in document
                and not isinstance(document["id"], str)
            ):
                raise ValueError(f"documents[{position}].id must be a string")
        return documents


class QueryItem(BaseModel):
    """A query with an image: the image alone, or with a text (a composed query)."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    image: str | None = Field(None, description="data URI, base64, or an http(s) URL")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str | QueryItem = Field(
        ..., description='a text, or {"image": ...} / {"text": ..., "image": ...}'
    )
    top_k: StrictInt = Field(10, ge=1, le=1000)
    mode: Literal["dense", "sparse", "hybrid"] = "hybrid"
    rerank: bool | str = Field(
        False, description="true: the collection's reranker; or the id of a loaded reranker"
    )
    filter: dict[str, Any] | None = None
    max_chars: StrictInt | None = Field(
        None, ge=1, description="Return this much text from each hit's best passage"
    )
    diversity: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="MMR's lambda: 1 keeps the order, lower values favour hits unlike those "
        "above them (default: off)",
    )
    collapse_duplicates: StrictBool = Field(
        False, description="Fold near-identical hits into the best of them (its `duplicates`)"
    )
    outputs: list[Literal["dense", "sparse", "multivector"]] | None = Field(
        None,
        min_length=1,
        description="Which of the models' lists dense and hybrid search use (BGE-M3: dense, "
        "sparse, multivector; default: every list)",
    )

    @field_validator("query", mode="before")
    @classmethod
    def _query_shape(cls, value: Any) -> Any:
        """One message naming ``query`` for every wrong shape (not one per union member)."""
        if isinstance(value, str):
            return value
        if not isinstance(value, dict):
            raise ValueError('query is a text or an object with "text" and/or "image"')
        unknown = sorted(set(value) - {"text", "image"})
        if unknown:
            raise ValueError(f'query has unknown key(s) {unknown}; expected "text" and/or "image"')
        return value

    @field_validator("rerank", mode="before")
    @classmethod
    def _rerank_type(cls, value: Any) -> Any:
        """One message naming ``rerank`` (not one per union member), no coercion."""
        if not isinstance(value, bool | str):
            raise ValueError("rerank is true, false or a loaded reranker's id")
        return value

    @field_validator("rerank")
    @classmethod
    def _named_reranker(cls, value: bool | str) -> bool | str:
        if isinstance(value, str) and not value.strip():
            raise ValueError("rerank is true, false or a loaded reranker's id; got an empty text")
        return value
