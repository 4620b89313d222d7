"""Raw-text readers for each data source, registered by name.

A reader returns `({split: [Example, ...]}, stats)`. An Example is a dict with `source`, `target`
("" = no translation), `domain` ("" = unknown) and `price` (NaN = missing). Splits are `train`,
`validation` and `test`. Every problem a user can fix is a one-line UserError naming the file.
"""
import glob
import hashlib
import math
import os
import re
from typing import Callable, Dict, List, Tuple

from configs.errors import UserError
from data.mo import read_mo

Example = Dict[str, object]
Splits = Dict[str, List[Example]]
SPLITS = ("train", "validation", "test")

_READERS: Dict[str, Tuple[Callable, str]] = {}
DEFAULT_LOCALE_ROOT = "/usr/share/locale"
EMBEDDED_TSV = os.path.join(os.path.dirname(__file__), "files", "listings_berlin_2025-09.tsv")


def register_source(name: str, description: str):
  def decorate(fn):
    if name in _READERS:
      raise ValueError(f"data source {name!r} is already registered")
    _READERS[name] = (fn, description)
    return fn
  return decorate


def get_reader(name: str) -> Callable:
  if name not in _READERS:
    raise UserError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(_READERS))}")
  return _READERS[name][0]


def list_sources() -> Dict[str, str]:
  return {name: desc for name, (_, desc) in sorted(_READERS.items())}


def example(source, target="", domain="", price=math.nan) -> Example:
  return {"source": source, "target": target, "domain": domain, "price": float(price)}


def hash_split(text: str, validation_per_mille: int = 20, test_per_mille: int = 20) -> str:
  """Deterministic split from the md5 of the text: the same sentence always lands in one split."""
  bucket = int(hashlib.md5(text.encode("utf-8")).hexdigest()[:8], 16) % 1000
  if bucket < test_per_mille:
    return "test"
  return "validation" if bucket < test_per_mille + validation_per_mille else "train"


_ACCELERATOR = re.compile(r"(?<![\w&_])[_&~](?=\w)")


def clean_ui_string(text: str) -> str:
  """Strips accelerator markers (`_File`, `&File`, `~File`) and normalises whitespace."""
  return " ".join(_ACCELERATOR.sub("", text).split())


@register_source("gettext", "English->X UI strings from this machine's gettext catalogs "
                 "(/usr/share/locale/<lang>/LC_MESSAGES/*.mo); domain = catalog name")
def read_gettext(data_dir: str, source_lang: str, target_lang: str) -> Tuple[Splits, dict]:
  """Cleaned, deduplicated English->target pairs, split by hash of the English sentence."""
  if source_lang != "en":
    raise UserError(f"dataset gettext translates from English (msgids); got --source_lang="
                    f"{source_lang!r}")
  root = data_dir or DEFAULT_LOCALE_ROOT
  files = sorted(glob.glob(os.path.join(root, target_lang, "LC_MESSAGES", "*.mo")))
  if not files:
    raise UserError(f"no gettext catalogs for language {target_lang!r} under {root!r} "
                    f"(looked for {root}/{target_lang}/LC_MESSAGES/*.mo)")
  stats = {"catalogs": len(files), "entries": 0, "unreadable_catalogs": 0, "dropped_short": 0,
           "dropped_identical_or_empty": 0, "duplicates": 0}
  seen: Dict[str, Example] = {}
  for path in files:
    domain = os.path.basename(path)[:-3]
    try:
      entries = list(read_mo(path))
    except (ValueError, OSError):
      stats["unreadable_catalogs"] += 1
      continue
    for msgid, msgstr in entries:
      stats["entries"] += 1
      src, tgt = clean_ui_string(msgid), clean_ui_string(msgstr)
      if not tgt or src == tgt:
        stats["dropped_identical_or_empty"] += 1
      elif len(src.split()) < 3:
        stats["dropped_short"] += 1
      elif src in seen:
        stats["duplicates"] += 1
      else:
        seen[src] = example(src, tgt, domain)
  splits: Splits = {s: [] for s in SPLITS}
  for src in sorted(seen):
    splits[hash_split(src)].append(seen[src])
  stats.update({f"{s}_examples": len(v) for s, v in splits.items()})
  return splits, stats


def _read_lines(path: str) -> List[str]:
  if not os.path.isfile(path):
    raise UserError(f"data file {path!r} does not exist")
  with open(path, "rb") as f:
    raw = f.read().split(b"\n")
  if raw and raw[-1] == b"":
    raw.pop()
  if not raw:
    raise UserError(f"data file {path!r} is empty")
  lines = []
  for number, line in enumerate(raw, 1):
    try:
      lines.append(line.decode("utf-8").rstrip("\r"))
    except UnicodeDecodeError:
      raise UserError(f"{path}:{number}: invalid UTF-8") from None
  return lines


def _find_split_file(data_dir: str, split: str, lang: str) -> str:
  prefixes = {"train": ["train"], "validation": ["val", "valid", "validation", "dev"],
              "test": ["test2016", "test"]}[split]
  for prefix in prefixes:
    path = os.path.join(data_dir, f"{prefix}.{lang}")
    if os.path.isfile(path):
      return path
  candidates = sorted(glob.glob(os.path.join(data_dir, f"{prefixes[-1]}*.{lang}")))
  if candidates:
    return candidates[0]
  raise UserError(f"parallel_text: no {split} file for language {lang!r} in {data_dir!r} "
                  f"(expected {prefixes[0]}.{lang})")


@register_source("parallel_text", "one sentence a line: DATA_DIR/{train,val,test*}.<lang> "
                 "(e.g. ../shared/data/multi30k as it is)")
def read_parallel_text(data_dir: str, source_lang: str, target_lang: str):
  """Line-aligned source/target files per split; blank pairs skipped and counted."""
  if not data_dir or not os.path.isdir(data_dir):
    raise UserError(f"dataset parallel_text needs --data_dir with train/val/test files; "
                    f"{data_dir!r} is not a directory")
  splits: Splits = {}
  stats = {"blank_pairs_skipped": 0}
  for split in SPLITS:
    src_path = _find_split_file(data_dir, split, source_lang)
    tgt_path = _find_split_file(data_dir, split, target_lang)
    src, tgt = _read_lines(src_path), _read_lines(tgt_path)
    if len(src) != len(tgt):
      raise UserError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; "
                      "parallel files must be line-aligned")
    rows = []
    for s, t in zip(src, tgt):
      s, t = " ".join(s.split()), " ".join(t.split())
      if not s or not t:
        stats["blank_pairs_skipped"] += 1
        continue
      rows.append(example(s, t))
    splits[split] = rows
    stats[f"{split}_examples"] = len(rows)
  return splits, stats


def parse_price(text: str) -> float:
  """A finite, non-negative price, else NaN."""
  try:
    value = float(text.replace(",", "").replace("$", "").replace("€", "").strip())
  except ValueError:
    return math.nan
  return value if math.isfinite(value) and value >= 0 else math.nan


@register_source("tsv", "tab-separated text with a price column, no translation (default: the "
                 "embedded Inside Airbnb Berlin listings, CC BY 4.0)")
def read_tsv(data_dir: str, source_lang: str, target_lang: str, text_column: str = "name",
             price_column: str = "price"):
  """Text + price rows, split by hash of the text; bad prices become NaN (masked) and counted."""
  del source_lang, target_lang
  path = data_dir or EMBEDDED_TSV
  lines = _read_lines(path)
  header = lines[0].split("\t")
  for column in (text_column, price_column):
    if column not in header:
      raise UserError(f"{path}:1: no column {column!r} in the header; columns: "
                      f"{', '.join(header)}")
  ti, pi = header.index(text_column), header.index(price_column)
  splits: Splits = {s: [] for s in SPLITS}
  stats = {"rows": 0, "prices_masked": 0, "blank_text_skipped": 0}
  for number, line in enumerate(lines[1:], 2):
    fields = line.split("\t")
    if len(fields) != len(header):
      raise UserError(f"{path}:{number}: {len(fields)} fields, the header has {len(header)}")
    text = " ".join(fields[ti].split())
    if not text:
      stats["blank_text_skipped"] += 1
      continue
    price = parse_price(fields[pi])
    stats["rows"] += 1
    stats["prices_masked"] += int(math.isnan(price))
    splits[hash_split(text, 50, 50)].append(example(text, price=price))
  stats.update({f"{s}_examples": len(v) for s, v in splits.items()})
  return splits, stats
