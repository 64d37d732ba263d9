from __future__ import annotations

import base64

import pytest

from omniretrieve.errors import InputError, LimitExceededError
from omniretrieve.inputs import (
    ImageInput,
    MixedInput,
    TextInput,
    decode_image_bytes,
    open_image,
    parse_input,
    parse_inputs,
    texts_of,
)
from tests.builders.images import png_bytes, png_claiming_size


def test_parse_the_accepted_shapes() -> None:
    assert parse_input("hello", field="input[0]") == TextInput("hello")
    assert parse_input({"text": "hi"}, field="x") == TextInput("hi")
    assert parse_input({"image": "aGk="}, field="x") == ImageInput("aGk=")
    assert parse_input({"text": "cap", "image": "aGk="}, field="x") == MixedInput(
        "cap", ImageInput("aGk=")
    )
    assert parse_inputs("one") == [TextInput("one")]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "empty list"),
        ([""], r"input\[0\] is an empty text"),
        (["ok", "   "], r"input\[1\] is an empty text"),
        ([{"txt": "typo"}], "unknown key"),
        ([{}], "needs a 'text' or an 'image'"),
        ([42], "must be a string or an object"),
        ([{"text": 5}], "must be a string"),
        ([{"image": 5}], "must be a string"),
    ],
)
def test_bad_inputs_name_the_field(value: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_inputs(value)
    assert info.value.field is not None and info.value.field.startswith("input")


def test_item_limit() -> None:
    with pytest.raises(LimitExceededError, match="limit is 2"):
        parse_inputs(["a", "b", "c"], max_items=2)


def test_text_only_models_name_the_image() -> None:
    with pytest.raises(InputError, match=r"input\[1\] is image, but model 'm' takes text only"):
        texts_of([TextInput("a"), ImageInput("aGk=")], model_id="m")


def test_image_from_data_uri_and_base64() -> None:
    raw = png_bytes()
    encoded = base64.b64encode(raw).decode()
    assert decode_image_bytes(f"data:image/png;base64,{encoded}") == raw
    assert decode_image_bytes(encoded) == raw
    assert open_image(raw).size == (8, 8)


def test_urls_and_garbage_are_refused_here() -> None:
    with pytest.raises(InputError, match="URL"):
        decode_image_bytes("http://127.0.0.1/x.png")
    with pytest.raises(InputError, match="neither a data URI nor valid base64"):
        decode_image_bytes("not base64 at all!")


def test_decompression_bomb_is_refused_from_the_header() -> None:
    bomb = png_claiming_size(20_000, 20_000)
    assert len(bomb) < 1_000
    with pytest.raises(LimitExceededError, match="400000000 pixels"):
        open_image(bomb)


def test_truncated_and_non_images() -> None:
    with pytest.raises(InputError, match="not a readable image"):
        open_image(png_bytes(64, 64)[:60])
    with pytest.raises(InputError, match="not a readable image"):
        open_image(b"plain text, not an image")


def test_byte_limit() -> None:
    with pytest.raises(LimitExceededError, match="bytes"):
        open_image(png_bytes(), max_bytes=10)
