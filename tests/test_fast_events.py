"""Generated model builders give what pydantic's JSON validation gives, on small models of every kind."""

from __future__ import annotations

import enum
import json
from typing import Any, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ifriend.sessions.fast_events import builder_for


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Leaf(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64"
    )

    short_name: str = ""
    weight: float = 1.0
    colour: Optional[Colour] = None
    blob: Optional[bytes] = None
    tags: set[str] = Field(default_factory=set)
    pair: Optional[tuple[int, str]] = None


class Tree(BaseModel):
    """Nested in itself, with a required field, a mutable default and a private attribute."""

    label: str
    children: list[Tree] = []
    leaves: dict[str, Leaf] = Field(default_factory=dict)
    best: Optional[Leaf] = None
    meta: dict[str, Any] = {"kind": ["tree"]}
    raw: Optional[bytes] = None  # read from JSON as UTF-8, unlike Leaf's base64
    _seen: int = PrivateAttr(default=0)
    _unset: int = PrivateAttr()


class ByAliasOnly(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    long_name: str = "default"


class Checked(BaseModel):
    text: str = ""

    @field_validator("text")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()


class Transformed(BaseModel):
    text: str = ""

    @model_validator(mode="before")
    @classmethod
    def _prefix(cls, data: Any) -> Any:
        return {**data, "text": "v:" + data.get("text", "")}


def assert_same(model: type[BaseModel], data: dict[str, Any]) -> BaseModel:
    built, validated = builder_for(model)(json.loads(json.dumps(data))), model.model_validate_json(json.dumps(data))
    assert type(built) is type(validated)
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump_json(exclude_none=True, by_alias=True) == validated.model_dump_json(
        exclude_none=True, by_alias=True
    )
    return built


def test_nested_recursive_models_with_conversions():
    leaf = {"shortName": "a", "weight": 2, "colour": "red", "blob": "AP8=", "tags": ["x", "y"], "pair": [1, "b"]}
    tree = {"label": "root", "children": [{"label": "kid", "children": [{"label": "grandkid"}]}],
            "leaves": {"l": leaf}, "best": {"short_name": "by name"}, "raw": "AP8="}
    built = assert_same(Tree, tree)
    first = built.leaves["l"]
    assert first.weight == 2.0 and isinstance(first.weight, float)
    assert first.colour is Colour.RED and first.blob == b"\x00\xff" and first.tags == {"x", "y"}
    assert first.pair == (1, "b") and built.raw == b"AP8="
    assert built.children[0].children[0].label == "grandkid"
    assert built.__pydantic_private__ == validated_private(tree) == {"_seen": 0}


def validated_private(data: dict[str, Any]) -> dict[str, Any] | None:
    return Tree.model_validate_json(json.dumps(data)).__pydantic_private__


def test_defaults_are_fresh_per_object():
    one, two = builder_for(Tree)({"label": "a"}), builder_for(Tree)({"label": "b"})
    assert one.meta == {"kind": ["tree"]} and one.meta is not two.meta and one.leaves is not two.leaves
    assert one.model_fields_set == {"label"}


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (Tree, {}),  # a required field missing
        (Leaf, {"shortName": "a", "unknown": 1}),  # extra="forbid"
        (Tree, {"label": "a", "best": "not an object"}),
        (Tree, {"label": "a", "children": [{"label": "b", "leaves": {"l": {"colour": "green"}}}]}),
    ],
)
def test_invalid_data_gets_pydantics_own_error(model, data):
    with pytest.raises(ValidationError) as expected:
        model.model_validate_json(json.dumps(data))
    with pytest.raises(ValidationError) as raised:
        builder_for(model)(data)
    # The error of the part that fell back to validation: the same kinds, located within that part.
    assert [e["type"] for e in raised.value.errors()] == [e["type"] for e in expected.value.errors()]


def test_names_and_aliases_as_the_model_accepts_them():
    assert assert_same(ByAliasOnly, {"longName": "x"}).long_name == "x"
    assert assert_same(ByAliasOnly, {"long_name": "ignored"}).long_name == "default"
    assert assert_same(Leaf, {"short_name": "by name"}).short_name == "by name"


def test_validators_that_transform_take_pydantics_path():
    assert assert_same(Checked, {"text": "abc"}).text == "ABC"
    assert assert_same(Checked, {}).text == ""
    assert assert_same(Transformed, {"text": "abc"}).text == "v:abc"
