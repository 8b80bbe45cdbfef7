"""What every config section shares: the base model, error wording and registry look-ups."""

from __future__ import annotations

import importlib
import re
import typing
from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, model_validator

from ..errors import ConfigError


def _registry(module: str, name: str) -> list[str]:
    """The names a registry holds, imported when a value is checked (the config must not pull in FAISS or torch)."""
    return list(getattr(importlib.import_module(f"rag.{module}"), name))


def registered(module: str, name: str, *, sort: bool = False, first: Sequence[str] = ()) -> AfterValidator:
    """A field's check that its value is a name in the registry ``rag.<module>.<name>`` (or one of ``first``),
    imported when a value is checked; the message lists the names (sorted with ``sort``). One shape for every
    "which backend / retriever / method" field::

        backend: Annotated[str, registered("store", "BACKENDS", sort=True)] = Field("faiss", ...)
    """

    def check(value: str) -> str:
        names = _registry(module, name)
        return _one_of(value, [*first, *(sorted(names) if sort else names)])

    return AfterValidator(check)


def _one_of(value: str, names: Sequence[str]) -> str:
    if value not in names:
        raise ValueError(f"must be one of {', '.join(names)}, got {value!r}")
    return value


class _Section(BaseModel):
    """Shared settings of every section: frozen, unknown keys forbidden, errors as ConfigError."""

    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)
    section: ClassVar[str] = ""

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, type(self))) from None

    @model_validator(mode="before")
    @classmethod
    def _one_string_is_a_list(cls, data: Any) -> Any:
        # `stop: "Question:"` in YAML means a list of one.
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                if typing.get_origin(info.annotation) is tuple and isinstance(data.get(name), str):
                    data = {**data, name: [data[name]]}
        return data


# pydantic error type -> what the key must be (the bound comes from the error's context).
_KINDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "tuple_type": "a list",
    "list_type": "a list",
    "model_type": "a mapping of keys",
    "dict_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
}
_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}


def _describe(exc: ValidationError, model: type[BaseModel], prefix: str | None = None) -> str:
    """One message per error, each naming the dotted key (under ``prefix``, default the model's section), the bad value and what it must be."""
    return "; ".join(_describe_one(err, model, prefix) for err in exc.errors())


def _describe_one(err: dict[str, Any], model: type[BaseModel], prefix: str | None = None) -> str:
    prefix = getattr(model, "section", "") if prefix is None else prefix
    key = ".".join([prefix, *map(str, err["loc"])] if prefix else map(str, err["loc"])) or "config"
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if isinstance(ctx.get("error"), ConfigError):  # a section's own __init__ already named its key
        return str(ctx["error"])
    if kind == "extra_forbidden":
        valid = sorted(_fields_at(model, err["loc"][:-1]))
        return f"unknown config key {key!r}; valid keys here: {valid}"
    if kind in _BOUNDS:
        op, name = _BOUNDS[kind]
        bound = ctx[name]
        return f"{key} must be {op} {format(bound, 'g') if isinstance(bound, float) else bound}, got {value!r}"
    if kind == "literal_error":
        names = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{key} must be one of {', '.join(names)}, got {value!r}"
    if kind == "value_error":
        return f"{key} {ctx['error']}"
    if kind == "string_pattern_mismatch" and key.endswith("base_url"):
        return f"{key} must be an http(s) URL such as http://127.0.0.1:8080/v1, got {value!r}"
    if kind in _KINDS:
        return f"config key {key!r} must be {_KINDS[kind]}, got {value!r}"
    return f"config key {key!r}: {err['msg']}, got {value!r}"


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    for part in loc:
        info = model.model_fields.get(str(part))
        if info is None or not (isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)):
            return set()
        model = info.annotation
    return set(model.model_fields)
