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
