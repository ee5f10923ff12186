"""Fast event building: pydantic models (ADK `Event`s) rebuilt from their own JSON, unvalidated.

Parsing, not I/O, dominates a cold read of a long session: pydantic validates an
ADK `Event` in tens of microseconds. Data the stores hold was serialized from
validated models, so a builder compiled from the model's field annotations can
assemble the same objects several times faster. Anything the builder cannot
reproduce exactly (unions of models, validators that transform, unusual types)
falls back to pydantic's own JSON validation for that part only, and the test
suite checks `build(data) == Model.model_validate_json(...)` on rich events.
"""

from __future__ import annotations

import copy
import enum
import json
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic_core import PydanticUndefined

Builder = Callable[[Any], Any]

# Model validators that only check or route constructor keyword arguments, and
# so are no-ops on data a model serialized itself.
_NO_OP_VALIDATORS = frozenset({"_accept_convenience_kwargs", "_check_field_type_mismatches"})
_IMMUTABLE = (type(None), str, int, float, bool, bytes, tuple, frozenset, enum.Enum)
_BASE64_BYTES = TypeAdapter(bytes, config=ConfigDict(val_json_bytes="base64"))


def builder_for(annotation: Any) -> Builder | None:
    """A function turning JSON data into a value of `annotation`; None means as-is."""
    return _builder(annotation)


@cache
def _builder(annotation: Any) -> Builder | None:
    origin = get_origin(annotation)
    if annotation is Any or annotation in (str, int, bool, object) or origin is typing.Literal:
        return None
    if annotation is float:
        return float
    if annotation is bytes:
        return lambda value: _BASE64_BYTES.validate_json(json.dumps(value))
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _builder(members[0]) if len(members) == 1 else _validating(annotation)
    if origin in (list, set, frozenset) or annotation in (list, set, frozenset, dict):
        return _collection(origin or annotation, get_args(annotation))
    if origin is tuple:
        return _validating(annotation)
    if origin is dict:
        inner = _builder(get_args(annotation)[1])
        return None if inner is None else (lambda value: {k: inner(v) for k, v in value.items()})
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_builder(annotation)
    return _validating(annotation)


def _collection(kind: type, args: tuple[Any, ...]) -> Builder | None:
    inner = _builder(args[0]) if args else None
    if inner is None:
        return None if kind in (list, dict) else kind
    if kind is list:
        return lambda value: [inner(v) for v in value]
    return lambda value: kind(inner(v) for v in value)


def _validating(annotation: Any) -> Builder:
    adapter = TypeAdapter(annotation)
    return lambda value: adapter.validate_json(json.dumps(value))


def _model_builder(model: type[BaseModel]) -> Builder:
    decorators = model.__pydantic_decorators__
    if any(name not in _NO_OP_VALIDATORS for name in decorators.model_validators) or (
        model.model_config.get("extra") == "allow"
    ):
        return lambda value: model.model_validate_json(json.dumps(value))
    guarded = {f for d in decorators.field_validators.values() for f in d.info.fields}
    # JSON key (alias or name) -> field name, and -> (field name, builder) where one is needed.
    names: dict[str, str] = {}
    nested: dict[str, tuple[str, Builder]] = {}
    for name, info in model.model_fields.items():
        built = _builder(info.annotation)
        for key in {name, info.alias or name}:
            names[key] = name
            if built is not None:
                nested[key] = (name, built)
    guarded_keys = tuple(k for k, name in names.items() if name in guarded)
    construct = _constructor(model)
    validate = model.model_validate_json

    def build(value: Any) -> BaseModel:
        if not isinstance(value, dict):
            return validate(json.dumps(value))
        for key in guarded_keys:
            if value.get(key):
                return validate(json.dumps(value))
        values = {}
        for key, item in value.items():
            found = nested.get(key)
            if found is None or item is None:
                values[names[key]] = item
            else:
                values[found[0]] = found[1](item)
        return construct(values)

    return build


def _constructor(model: type[BaseModel]) -> Callable[[dict[str, Any]], BaseModel]:
    """What `model.model_construct` does, for the fields this model has, minus its overhead."""
    # Field order is kept so that a rebuilt model serializes exactly as the original.
    template: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name, info in model.model_fields.items():
        template[name] = None
        if info.default_factory is not None:
            if info.default_factory_takes_validated_data:
                return lambda values: model.model_construct(**values)
            factory = info.default_factory
            if isinstance(factory, type) and issubclass(factory, BaseModel):
                empty = _constructor(factory)
                factories[name] = lambda empty=empty: empty({})
            else:
                factories[name] = factory  # type: ignore[assignment]
        elif info.default is PydanticUndefined:
            continue
        elif isinstance(info.default, _IMMUTABLE):
            template[name] = info.default
        else:
            factories[name] = lambda default=info.default: copy.deepcopy(default)
    privates = dict(model.__private_attributes__ or {})
    post_init = model.model_post_init is not BaseModel.model_post_init
    set_attribute = object.__setattr__

    def construct(values: dict[str, Any]) -> BaseModel:
        full = template.copy()
        full.update(values)
        for name, factory in factories.items():
            if name not in values:
                full[name] = factory()
        obj = model.__new__(model)
        set_attribute(obj, "__dict__", full)
        set_attribute(obj, "__pydantic_fields_set__", set(values))
        set_attribute(obj, "__pydantic_extra__", None)
        set_attribute(
            obj,
            "__pydantic_private__",
            {n: p.get_default() for n, p in privates.items()} if privates else None,
        )
        if post_init:
            obj.model_post_init(None)
        return obj

    return construct
