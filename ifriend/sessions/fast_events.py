"""Fast event building: pydantic models (ADK `Event`s) rebuilt from their own JSON, unvalidated.

Parsing, not I/O, dominates a cold read of a long session: pydantic validates an
ADK `Event` in tens of microseconds. Data the stores hold was serialized from
validated models, so a builder generated from each model's fields (Python source,
compiled once) can assemble the same objects several times faster. Anything the
builder cannot reproduce exactly (unions of models, validators that transform,
keys the model does not have, unusual types) falls back to pydantic's own JSON
validation for that part only, and the tests check that builds equal validation
(values, `model_fields_set`, serialization) on rich events.

Measured (1000 events of `ifriend_bench`'s `make_event`, gc off, medians of 30
interleaved runs, three runs on 2 busy cores): the generated builders take
1.10-1.19x the time of a hand-written builder for that one event shape (the
floor: making the objects), where the generic builder they replace took
1.2-1.5x; on events with function calls, responses and state deltas they take
0.77-0.83x the generic builder's time.
"""

from __future__ import annotations

import copy
import enum
import json
import linecache
import types
import typing
from collections.abc import Callable
from functools import cache, partial
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic_core import PydanticUndefined

Builder = Callable[[Any], Any]

# Model validators that only check or route constructor keyword arguments, and
# so are no-ops on data a model serialized itself.
_NO_OP_VALIDATORS = frozenset({"_accept_convenience_kwargs", "_check_field_type_mismatches"})
_IMMUTABLE = (type(None), str, int, float, bool, bytes, tuple, frozenset, enum.Enum)


def builder_for(annotation: Any) -> Builder | None:
    """A function turning JSON data into a value of `annotation`; None means as-is."""
    return _builder(annotation, "utf8")


@cache
def _builder(annotation: Any, json_bytes: str) -> Builder | None:
    """`json_bytes` is how the model holding the value reads bytes from JSON (its `val_json_bytes`)."""
    origin = get_origin(annotation)
    if annotation is Any or annotation in (str, int, bool, object) or origin is typing.Literal:
        return None
    if annotation is float:
        return float
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _builder(members[0], json_bytes) if len(members) == 1 else _validating(annotation, json_bytes)
    if origin in (list, set, frozenset) or annotation in (list, set, frozenset, dict):
        inner = _builder(get_args(annotation)[0], json_bytes) if get_args(annotation) else None
        kind = origin or annotation
        if inner is None:
            return None if kind in (list, dict) else kind
        return lambda value: kind(map(inner, value))
    if origin is dict:
        inner = _builder(get_args(annotation)[1], json_bytes)
        return None if inner is None else (lambda value: {k: inner(v) for k, v in value.items()} if value else value)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum(annotation, json_bytes)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_builder(annotation)
    return _validating(annotation, json_bytes)  # bytes, tuples, unions of several types, ...


def _enum(kind: type[enum.Enum], json_bytes: str) -> Builder:
    validate = _validating(kind, json_bytes)

    def convert(value: Any) -> enum.Enum:
        try:
            return kind(value)
        except ValueError:  # not a member: pydantic's own error
            return validate(value)

    return convert


def _validating(annotation: Any, json_bytes: str) -> Builder:
    adapter = TypeAdapter(annotation, config=ConfigDict(val_json_bytes=json_bytes))  # type: ignore[typeddict-item]
    return lambda value: adapter.validate_json(json.dumps(value))


@cache
def _model_builder(model: type[BaseModel]) -> Builder:
    def validate(value: Any) -> BaseModel:
        return model.model_validate_json(json.dumps(value))

    infos = model.model_fields.values()
    if (
        any(name not in _NO_OP_VALIDATORS for name in model.__pydantic_decorators__.model_validators)
        or model.model_config.get("extra") == "allow"
        or model.__pydantic_root_model__
        or any(not isinstance(i.validation_alias, (str, type(None))) for i in infos)
        or any(i.default_factory_takes_validated_data for i in infos)
    ):
        return validate
    if model in _compiling:  # a model nested in itself: its builder is looked up when called
        return lambda value: _model_builder(model)(value)
    _compiling.add(model)
    try:
        return _compile(model, validate)
    finally:
        _compiling.discard(model)


_compiling: set[type[BaseModel]] = set()
_MISSING = object()
# Post-inits known to act only when a field is empty (ADK's Event gives an event
# without an id a new one): builders call them only then.
_POST_INIT_UNLESS_SET = {("google.adk.events.event", "Event.model_post_init"): "id"}


def _compile(model: type[BaseModel], validate: Builder) -> Builder:
    """A builder specialized to `model`, generated as Python source once.

    What it does is what `model.model_construct` does, plus the fields' conversions:
    one dict lookup per JSON key, nested builders called directly, then one line
    per field with a default factory, a required field or a field validator.
    A generic loop over the fields (template copy, factories, closures,
    `set(values)`, post-init calls) cost half again as much as making the objects.
    """
    config = model.model_config
    by_name = config.get("populate_by_name") or config.get("validate_by_name")
    by_alias = config.get("validate_by_alias", True)
    json_bytes = config.get("val_json_bytes", "utf8")
    guarded = {f for d in model.__pydantic_decorators__.field_validators.values() for f in d.info.fields}
    namespace: dict[str, Any] = {
        "model": model, "validate": validate, "MISSING": _MISSING, "new": model.__new__,
        "setattr": object.__setattr__, "privates": partial(_private_defaults, model.__private_attributes__),
    }
    fields: dict[str, tuple[str, Builder | None]] = {}  # JSON key -> (field name, conversion)
    template: dict[str, Any] = {}  # in field order, so that a rebuilt model serializes as the original
    checks: list[str] = []
    for index, (name, info) in enumerate(model.model_fields.items()):
        alias = info.validation_alias or info.alias
        if alias is None or by_name:
            fields[name] = (name, _builder(info.annotation, json_bytes))
        if alias is not None and by_alias:
            fields[alias] = (name, _builder(info.annotation, json_bytes))  # type: ignore[index]
        template[name] = _MISSING
        if info.default_factory is not None:
            factory = info.default_factory
            if isinstance(factory, type) and issubclass(factory, BaseModel):
                factory = partial(_model_builder(factory), {})
        elif info.default is PydanticUndefined:
            checks.append(f"if full[{name!r}] is MISSING:\n        return validate(value)")
            continue
        elif isinstance(info.default, _IMMUTABLE):
            template[name] = info.default
            continue
        else:
            factory = partial(copy.deepcopy, info.default)
        namespace[f"default_{index}"] = factory
        checks.append(f"if full[{name!r}] is MISSING:\n        full[{name!r}] = default_{index}()")
    checks += [f"if full[{name!r}]:\n        return validate(value)" for name in template if name in guarded]
    post_init = ""
    if model.model_post_init is not BaseModel.model_post_init:
        method = model.model_post_init
        unless = _POST_INIT_UNLESS_SET.get((method.__module__, method.__qualname__))
        post_init = f"if not full[{unless!r}]:\n        " if unless else ""
        post_init += "obj.model_post_init(None)"
    namespace.update(template=template, fields=fields)
    private = "privates()" if model.__private_attributes__ else "None"
    lines = "\n    ".join
    source = f"""\
def build(value):
    if value.__class__ is not dict:
        return validate(value)
    full = template.copy()
    fields_set = set()
    add = fields_set.add
    try:
        for key, item in value.items():
            name, convert = fields[key]
            if convert is not None and item is not None:
                item = convert(item)
            full[name] = item
            add(name)
    except KeyError:  # a key the model does not have: pydantic decides
        return validate(value)
    {lines(checks)}
    obj = new(model)
    setattr(obj, "__dict__", full)
    setattr(obj, "__pydantic_fields_set__", fields_set)
    setattr(obj, "__pydantic_extra__", None)
    setattr(obj, "__pydantic_private__", {private})
    {post_init}
    return obj
"""
    filename = f"<builder of {model.__module__}.{model.__qualname__}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)  # for tracebacks
    exec(compile(source, filename, "exec"), namespace)
    return namespace["build"]


def _private_defaults(privates: dict[str, Any]) -> dict[str, Any]:
    """What pydantic's `init_private_attributes` sets."""
    return {n: d for n, p in privates.items() if (d := p.get_default()) is not PydanticUndefined}
