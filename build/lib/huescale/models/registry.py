"""A name -> constructor registry for models (the BasicSR pattern, explicit imports)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Class decorator: make a model buildable as ``build(name, ...)``.

    Raises:
        KeyError: if ``name`` is already registered.
    """

    def deco(cls: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise KeyError(f"model name {name!r} is registered twice")
        _REGISTRY[name] = cls
        return cls

    return deco


def build(name: str, **kwargs) -> nn.Module:
    """Instantiate the model registered as ``name`` with ``kwargs``.

    Raises:
        ValueError: for an unknown name (the message lists the known ones) or
            keyword arguments the model does not take.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(sorted(_REGISTRY))}")
    try:
        return _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise ValueError(f"model {name!r}: bad parameters {kwargs}: {exc}") from None


def available() -> dict[str, str]:
    """Registered names -> the first line of their docstring (which cites its source, docs/sources.md)."""
    return {k: (v.__doc__ or "").strip().splitlines()[0] for k, v in sorted(_REGISTRY.items())}


def model_class(name: str) -> Callable[..., nn.Module] | None:
    """The constructor registered as ``name`` (its class attributes, e.g. ``has_aux``), or None."""
    return _REGISTRY.get(name)
