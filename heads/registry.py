"""Head registry: `@register_head("name")` on a `Head` subclass; lookup with a clear miss error."""
from typing import Dict, Type

from configs.errors import UserError
from heads.base import Head

_HEADS: Dict[str, Type[Head]] = {}


def register_head(name: str):
  """Class decorator registering a Head subclass under `name` (unique)."""
  def decorate(cls):
    if not (isinstance(cls, type) and issubclass(cls, Head)):
      raise TypeError(f"@register_head({name!r}) needs a Head subclass, got {cls!r}")
    if name in _HEADS and _HEADS[name] is not cls:
      raise ValueError(f"head {name!r} is already registered by {_HEADS[name].__module__}")
    cls.head_name = name
    _HEADS[name] = cls
    return cls
  return decorate


def get_head_class(name: str) -> Type[Head]:
  if name not in _HEADS:
    raise UserError(f"unknown head {name!r}; known heads: {', '.join(sorted(_HEADS))}")
  return _HEADS[name]


def registered_heads() -> Dict[str, Type[Head]]:
  return dict(sorted(_HEADS.items()))
