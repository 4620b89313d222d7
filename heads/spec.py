"""`--heads` parsing, typed option validation, building heads, importing users' head modules.

Syntax: `name:opt=value,opt=value;name2:...`. List values use `+` (`layers=0+2`,
`hidden=128+64`). Booleans: true/false/1/0/yes/no.
"""
import dataclasses
import hashlib
import importlib
import importlib.util
import math
import os
import re
import sys
import typing
from typing import List, Sequence, Tuple

import tensorflow as tf

from configs.config import HeadSpec
from configs.errors import UserError
from configs.parsing import check_unique_heads, parse_heads_spec  # noqa: F401  (re-exported)
from heads import synthetic
from heads.base import Head, HeadContext, float32_policy
from heads.registry import get_head_class, registered_heads
from model.seeding import component_seed


def _convert(head: str, option: str, value: str, kind):
  """Converts one option string to `kind` (int, float, bool, str, Tuple[...], Literal)."""
  origin, args = typing.get_origin(kind), typing.get_args(kind)
  try:
    if origin is typing.Literal:
      if value not in args:
        raise ValueError
      return value
    if origin in (tuple, Tuple):
      return tuple(_convert(head, option, v, args[0]) for v in value.split("+") if v)
    if kind is bool:
      lowered = value.lower()
      if lowered not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError
      return lowered in ("true", "1", "yes")
    converted = kind(value)
    if kind is float and not math.isfinite(converted):
      raise ValueError  # nan / inf: no option of any head means them
    return converted
  except ValueError:
    names = {int: "an integer", float: "a finite number", bool: "true or false",
             str: "a string"}
    expected = (f"one of {', '.join(args)}" if origin is typing.Literal else
                f"a '+'-separated list of {args[0].__name__}" if args else names[kind])
    raise UserError(f"head {head!r}: option {option!r} expects {expected}, got {value!r}") from None


def make_options(head_cls, spec: HeadSpec):
  """The head's Options dataclass from the spec's raw strings, validated."""
  fields = {f.name: f for f in dataclasses.fields(head_cls.Options)}
  hints = typing.get_type_hints(head_cls.Options)
  values = {}
  for key, raw in spec.options:
    if key not in fields:
      raise UserError(f"head {spec.name!r} has no option {key!r}; options: "
                      f"{', '.join(fields)}")
    values[key] = _convert(spec.name, key, raw, hints[key])
  try:
    options = head_cls.Options(**values)
  except (TypeError, ValueError) as e:
    raise UserError(f"head {spec.name!r}: {e}") from None
  if options.weight < 0:
    raise UserError(f"head {spec.name!r}: weight must be >= 0 (0 removes the head), got "
                    f"{options.weight:g}; to reverse its gradient into the encoder use "
                    f"grad_scale < 0")
  validate = getattr(options, "validate", None)
  if validate is not None:
    try:
      validate()
    except ValueError as e:
      raise UserError(f"head {spec.name!r}: {e}") from None
  return options


def build_heads(specs: Sequence[HeadSpec], context: HeadContext) -> List[Head]:
  """Builds translation (always first) and the requested heads; weight-0 heads are skipped.

  Each head is constructed under `component_seed(context.seed, "head/<name>")`, so its initial
  weights depend only on (seed, name), never on which other heads exist. A head whose sublayers
  are not all built in `__init__` is then run once on synthetic outputs (heads/synthetic.py,
  training=False: no state changes), so that its variables exist right away.

  Args:
    specs: requested heads; a `translation` spec only sets translation's options.
    context: sizes and training-set label facts.

  Returns:
    The built heads, translation first, then in the order requested.

  Raises:
    UserError: unknown head or option, bad value, a head named twice, or a head that fails
      to build from its options.
  """
  check_unique_heads(specs)
  by_name = {s.name: s for s in specs}
  ordered = [by_name.pop("translation", HeadSpec("translation"))] + list(by_name.values())
  heads = []
  for spec in ordered:
    cls = get_head_class(spec.name)
    options = make_options(cls, spec)
    if options.weight == 0 and spec.name != "translation":
      continue  # not built at all: training is bit-identical to not naming the head
    with component_seed(context.seed, f"head/{spec.name}"), float32_policy():
      try:
        head = cls(options, context)
      except ValueError as e:  # e.g. an unknown activation name, from Keras
        if isinstance(e, UserError):
          raise
        raise UserError(f"head {spec.name!r}: {_one_line(e)}") from None
      _run_once(head, context)
    heads.append(head)
  return heads


def _run_once(head: Head, context: HeadContext) -> None:
  """If a sublayer is still unbuilt, runs `head` once on synthetic outputs so that its variables
  exist (eager, training=False: no statistics or seed updates)."""
  sublayers = head._flatten_layers(include_self=False)  # pylint: disable=protected-access
  if all(layer.built for layer in sublayers):
    return
  outputs = synthetic.synthetic_outputs(context)
  try:
    head.loss_terms(outputs, synthetic.synthetic_batch(context, head.labels), training=False)
  except (ValueError, TypeError, KeyError, IndexError, AttributeError, tf.errors.OpError) as e:
    raise UserError(f"head {head.head_name!r} has unbuilt sublayers and failed on synthetic "
                    f"outputs ({type(e).__name__}: {_one_line(e)}); build its sublayers in "
                    f"__init__") from e


def _one_line(error: BaseException) -> str:
  return " ".join(str(error).split())


# What importing a user's module can raise for a mistake in it (anything else is a bug with its
# traceback).
_IMPORT_ERRORS = (ImportError, SyntaxError, OSError, NameError, AttributeError, TypeError,
                  ValueError, KeyError, IndexError, RuntimeError)


def import_head_modules(entries: Sequence[str]) -> None:
  """Imports each `.py` file path or dotted module name; importing registers its heads.

  A file is imported once per absolute path, under a module name derived from that path.

  Raises:
    UserError: a missing file, or any exception of the import, shown in one line.
  """
  for entry in entries:
    name = entry
    try:
      if entry.endswith(".py"):
        path = os.path.abspath(entry)
        if not os.path.isfile(path):
          raise UserError(f"--head_modules: file {entry!r} does not exist")
        digest = hashlib.sha1(path.encode("utf-8")).hexdigest()[:8]
        stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
        name = f"auxseq_user_{stem}_{digest}"
        if name in sys.modules:
          continue
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
      else:
        importlib.import_module(entry)
    except UserError:
      raise
    except _IMPORT_ERRORS as e:  # the user's own error, shown in one line
      if entry.endswith(".py"):
        sys.modules.pop(name, None)
      raise UserError(f"--head_modules: importing {entry!r} failed: "
                      f"{type(e).__name__}: {_one_line(e)}") from None


def describe_heads() -> str:
  """Every registered head: first docstring line and options with defaults (for --list_heads)."""
  lines = []
  for name, cls in registered_heads().items():
    doc = (cls.__doc__ or "").strip().splitlines()
    lines.append(f"{name}: {doc[0] if doc else ''}")
    for field in dataclasses.fields(cls.Options):
      lines.append(f"    {field.name} = {field.default!r}")
  return "\n".join(lines)
