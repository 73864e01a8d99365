"""Typer's parameter coercion without importing pydantic for values that need no conversion.

Typer (0.2x) builds a pydantic TypeAdapter for every parameter it processes, even one left at
its default: importing pydantic alone costs 0.15-0.35 s on every command. An absent value stays
absent and a text or bool value stays what it is, so those skip it; anything else
(`--lock-timeout 5`, with its bounds) still goes through typer's own coercion. With a typer
whose internals differ, nothing is changed."""

from __future__ import annotations

import types
from typing import Any, Union, get_args, get_origin

NONE_TYPE = type(None)


def _text(annotation: Any) -> bool:
    """`str` or `str | None`."""
    if annotation is str:
        return True
    union = get_origin(annotation) in (Union, types.UnionType)
    return union and set(get_args(annotation)) == {str, NONE_TYPE}


def _text_list(annotation: Any) -> bool:
    """`list[str]` or `list[str] | None`."""
    if get_origin(annotation) in (Union, types.UnionType):
        options = [arg for arg in get_args(annotation) if arg is not NONE_TYPE]
        annotation = options[0] if len(options) == 1 else None
    return get_origin(annotation) is list and get_args(annotation) == (str,)


def _light_runtime_param(descriptor: Any) -> Any:
    from project.compat import typer_runtime_param as typer_coercion

    RuntimeParam, build_runtime_param = typer_coercion()

    built: list[Any] = []

    def typer_runtime_param() -> Any:
        if not built:
            built.append(build_runtime_param(descriptor))
        return built[0]

    class LightRuntimeParam(RuntimeParam):  # type: ignore[misc, valid-type]
        """Absent, text and bool values as they are; the rest through typer's pydantic adapter."""

        def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
            if value is None:
                return super().coerce(value, param=param, ctx=ctx)  # () or None, no adapter
            if (_text(self.annotation) and isinstance(value, str)) or (
                self.annotation is bool and isinstance(value, bool)
            ):
                return value
            if (
                _text_list(self.annotation)
                and isinstance(value, tuple | list)
                and all(isinstance(item, str) for item in value)
            ):
                return list(value)
            return typer_runtime_param().coerce(value, param=param, ctx=ctx)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            return typer_runtime_param()._coerce_value(value, param=param, ctx=ctx)

    return LightRuntimeParam(parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)


def lighten(params: list[Any]) -> list[Any]:
    """Give each typer parameter that has no coercion yet the light one; returns `params`."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if descriptor is None or getattr(param, "_runtime_param", False) is not None:
            continue
        if getattr(descriptor, "file_annotation", None) is None:
            try:
                param._runtime_param = _light_runtime_param(descriptor)
            except (ImportError, TypeError, AttributeError):
                break
    return params
