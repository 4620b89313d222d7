"""The data-source registry and what every reader shares (example rows, hash splits).

A reader is `fn(data_dir, source_lang, target_lang) -> ({split: [Example, ...]}, stats)`. An
Example is a dict with `source`, `target` ("" = no translation), `domain` ("" = unknown), `price`
(NaN = missing) and `alignment` (Pharaoh `i-j` links between the whitespace-separated *words* of
source and target; "" = none). Splits are `train`, `validation` and `test`.
"""
import hashlib
import math
from typing import Callable, Dict, List, Tuple

from configs.errors import UserError

Example = Dict[str, object]
Splits = Dict[str, List[Example]]
Reader = Callable[[str, str, str], Tuple[Splits, dict]]
SPLITS = ("train", "validation", "test")

_READERS: Dict[str, Tuple[Reader, str]] = {}
# Optional streaming twins of readers: fn(data_dir, source_lang, target_lang) -> (iterator of
# (split, Example), stats filled in while the iterator runs). Preparation uses them when there.
_STREAMS: Dict[str, Callable] = {}


def register_source(name: str, description: str):
  """Decorator registering a reader under `name` with a one-line `description`."""
  def decorate(fn: Reader) -> Reader:
    if name in _READERS:
      raise ValueError(f"data source {name!r} is already registered")
    _READERS[name] = (fn, description)
    return fn
  return decorate


def get_reader(name: str) -> Reader:
  """The reader registered as `name`; UserError listing the known names otherwise."""
  if name not in _READERS:
    raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_READERS))}")
  return _READERS[name][0]


def register_stream(name: str):
  """Decorator registering the streaming form of the reader `name` (see `_STREAMS`)."""
  def decorate(fn):
    if name in _STREAMS:
      raise ValueError(f"data stream {name!r} is already registered")
    _STREAMS[name] = fn
    return fn
  return decorate


def get_stream(name: str) -> Callable:
  """The streaming reader of `name`; a reader without one is read whole, then streamed."""
  get_reader(name)
  if name in _STREAMS:
    return _STREAMS[name]

  def whole(data_dir, source_lang, target_lang, **options):
    splits, stats = get_reader(name)(data_dir, source_lang, target_lang, **options)
    return ((split, row) for split in SPLITS for row in splits.get(split, [])), stats
  return whole


def collect(rows, stats: dict) -> Tuple[Splits, dict]:
  """A stream's (split, Example) pairs gathered into {split: [Example, ...]} (input order)."""
  splits: Splits = {s: [] for s in SPLITS}
  for split, row in rows:
    splits[split].append(row)
  return splits, stats


def list_sources() -> Dict[str, str]:
  """{name: one-line description} of every registered source, sorted by name."""
  return {name: desc for name, (_, desc) in sorted(_READERS.items())}


def example(source: str, target: str = "", domain: str = "", price: float = math.nan,
            alignment: str = "") -> Example:
  return {"source": source, "target": target, "domain": domain, "price": float(price),
          "alignment": alignment}


def hash_split(text: str, validation_per_mille: int = 20, test_per_mille: int = 20) -> str:
  """Deterministic split from the md5 of `text`: one sentence always lands in one split."""
  bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % 1000
  if bucket < test_per_mille:
    return "test"
  return "validation" if bucket < test_per_mille + validation_per_mille else "train"


def split_rows(rows: List[Example], validation_per_mille: int, test_per_mille: int) -> Splits:
  """Groups rows into SPLITS by `hash_split` of their source text (input order kept)."""
  splits: Splits = {s: [] for s in SPLITS}
  for row in rows:
    splits[hash_split(row["source"], validation_per_mille, test_per_mille)].append(row)
  return splits
