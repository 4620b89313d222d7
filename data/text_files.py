"""Sources read from plain text files: `parallel_text` (line-aligned, optionally with Pharaoh word
alignments) and `tsv` (text + price).

Every problem a user can fix is one UserError line naming the file (and line) and what is accepted.
"""
import glob
import math
import os
import re
from typing import List, Optional, Tuple

from configs.errors import UserError
from data.registry import SPLITS, Splits, example, register_source, split_rows

EMBEDDED_TSV = os.path.join(os.path.dirname(__file__), "files", "listings_berlin_2025-09.tsv")
_PREFIXES = {"train": ("train",), "validation": ("val", "valid", "validation", "dev"),
             "test": ("test",)}
_LINK = re.compile(r"([0-9]+)-([0-9]+)")


def read_lines(path: str) -> List[str]:
  """The UTF-8 lines of `path` (no line ends); UserError if missing, empty or not UTF-8."""
  if not os.path.isfile(path):
    raise UserError(f"data file {path!r} does not exist")
  with open(path, "rb") as f:
    raw = f.read().split(b"\n")
  if raw[-1] == b"":
    raw.pop()
  if not raw:
    raise UserError(f"data file {path!r} is empty")
  lines = []
  for number, line in enumerate(raw, 1):
    try:
      lines.append(line.decode("utf-8").rstrip("\r"))
    except UnicodeDecodeError as e:
      raise UserError(f"{path}:{number}: invalid UTF-8 at byte {e.start} of the line; "
                      "data files must be UTF-8") from None
  lines[0] = lines[0].lstrip("\ufeff")
  return lines


def find_split_file(data_dir: str, split: str, lang: str) -> str:
  """DATA_DIR/<prefix>.<lang> for the split (val/valid/validation/dev; test, else test*)."""
  for prefix in _PREFIXES[split]:
    path = os.path.join(data_dir, f"{prefix}.{lang}")
    if os.path.isfile(path):
      return path
  candidates = sorted(glob.glob(os.path.join(data_dir, f"{_PREFIXES[split][-1]}*.{lang}")))
  if candidates:
    return candidates[0]
  names = " or ".join(f"{p}.{lang}" for p in _PREFIXES[split])
  raise UserError(f"dataset parallel_text: no {split} file for language {lang!r} in "
                  f"{data_dir!r}; expected {names}" + (" or test*." + lang if split == "test"
                                                        else ""))


def find_alignment_file(src_path: str, source_lang: str, target_lang: str) -> Optional[str]:
  """DIR/<stem>.<src>-<tgt>.align, else DIR/<stem>.align, beside DIR/<stem>.<src>; or None."""
  stem = src_path[:-len(f".{source_lang}")]
  for path in (f"{stem}.{source_lang}-{target_lang}.align", f"{stem}.align"):
    if os.path.isfile(path):
      return path
  return None


def parse_alignment(line: str, source_words: int, target_words: int, where: str) -> str:
  """One Pharaoh line (`i-j` word links, whitespace-separated), checked and normalised.

  Args:
    line: e.g. "0-0 1-2 2-1"; i = 0-based source word, j = 0-based target word; "" = no links.
    source_words, target_words: word counts of the pair (whitespace-separated words).
    where: "FILE:LINE" for the error message.

  Returns:
    The links joined by single spaces.

  Raises:
    UserError: a link that is not `i-j` with non-negative integers, or one past the sentence.
  """
  links = line.split()
  for link in links:
    match = _LINK.fullmatch(link)
    if not match:
      raise UserError(f"{where}: malformed alignment link {link!r}; expected Pharaoh i-j with "
                      "0-based word indices (i = source word, j = target word)")
    i, j = int(match.group(1)), int(match.group(2))
    if i >= source_words or j >= target_words:
      raise UserError(f"{where}: alignment link {link!r} is past the sentence pair: the source "
                      f"has {source_words} words, the target {target_words} (indices start at 0)")
  return " ".join(links)


def _aligned_pairs(src_path: str, tgt_path: str, align_path: Optional[str]) -> Tuple[list, int]:
  src, tgt = read_lines(src_path), read_lines(tgt_path)
  if len(src) != len(tgt):
    raise UserError(f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}; "
                    "parallel files must have one line per sentence pair")
  align = read_lines(align_path) if align_path else [""] * len(src)
  if len(align) != len(src):
    raise UserError(f"{align_path} has {len(align)} lines but {src_path} and {tgt_path} have "
                    f"{len(src)}; an alignment file needs one line per sentence pair")
  rows, blank = [], 0
  for number, (s, t, a) in enumerate(zip(src, tgt, align), 1):
    s, t = s.split(), t.split()
    links = parse_alignment(a, len(s), len(t), f"{align_path}:{number}") if a.strip() else ""
    if s and t:
      rows.append(example(" ".join(s), " ".join(t), alignment=links))
    else:
      blank += 1
  return rows, blank


@register_source("parallel_text", "line-aligned DATA_DIR/{train,val,test*}.<lang> files, "
                 "e.g. ../shared/data/multi30k as it is; optional <split>.align word alignments")
def read_parallel_text(data_dir: str, source_lang: str, target_lang: str) -> Tuple[Splits, dict]:
  """One sentence a line per split and language; pairs with a blank side skipped and counted.

  An optional word alignment file per split beside the text files (`find_alignment_file`) fills
  each example's `alignment`; stats then list it among the split's files and count the pairs
  with at least one link (`<split>_aligned`).
  """
  if not data_dir or not os.path.isdir(data_dir):
    raise UserError(f"dataset parallel_text needs --data_dir=DIR holding train/val/test "
                    f"files; {data_dir!r} is not a directory")
  splits: Splits = {}
  stats = {"blank_lines_skipped": 0}
  for split in SPLITS:
    src_path = find_split_file(data_dir, split, source_lang)
    tgt_path = find_split_file(data_dir, split, target_lang)
    align_path = find_alignment_file(src_path, source_lang, target_lang)
    splits[split], blank = _aligned_pairs(src_path, tgt_path, align_path)
    stats["blank_lines_skipped"] += blank
    stats[f"{split}_examples"] = len(splits[split])
    stats[f"{split}_files"] = [os.path.basename(p) for p in (src_path, tgt_path, align_path) if p]
    if align_path:
      stats[f"{split}_aligned"] = sum(1 for row in splits[split] if row["alignment"])
  if not splits["train"]:
    raise UserError(f"dataset parallel_text: every line of the train files in {data_dir!r} "
                    "is blank on one side; nothing to train on")
  return splits, stats


def parse_price(text: str) -> float:
  """A finite, non-negative price ("1,200", "$85", "99.5"), else NaN."""
  try:
    value = float(text.replace(",", "").replace("$", "").replace("€", "").strip())
  except ValueError:
    return math.nan
  return value if math.isfinite(value) and value >= 0 else math.nan


def _tsv_path(data_dir: str) -> str:
  if not data_dir:
    return EMBEDDED_TSV
  if os.path.isdir(data_dir):
    files = sorted(glob.glob(os.path.join(data_dir, "*.tsv")))
    if len(files) != 1:
      raise UserError(f"dataset tsv: --data_dir={data_dir!r} holds {len(files)} *.tsv files; "
                      "give the file itself or a directory with exactly one")
    return files[0]
  return data_dir


@register_source("tsv", "tab-separated `name` text + `price` column, no translation (default: "
                 "the embedded Inside Airbnb Berlin listings, CC BY 4.0)")
def read_tsv(data_dir: str, source_lang: str, target_lang: str, text_column: str = "name",
             price_column: str = "price") -> Tuple[Splits, dict]:
  """Text + price rows split 90/5/5 by hash of the text; bad prices become NaN and are counted."""
  del source_lang, target_lang
  path = _tsv_path(data_dir)
  lines = read_lines(path)
  header = lines[0].split("\t")
  for column in (text_column, price_column):
    if column not in header:
      raise UserError(f"{path}:1: no column {column!r} in the header; columns: "
                      f"{', '.join(header)}")
  ti, pi = header.index(text_column), header.index(price_column)
  rows, stats = [], {"rows": 0, "prices_masked": 0, "blank_lines_skipped": 0}
  for number, line in enumerate(lines[1:], 2):
    fields = line.split("\t")
    if len(fields) != len(header):
      if not line.strip():
        stats["blank_lines_skipped"] += 1
        continue
      raise UserError(f"{path}:{number}: {len(fields)} tab-separated fields, the header has "
                      f"{len(header)}")
    text = " ".join(fields[ti].split())
    if not text:
      stats["blank_lines_skipped"] += 1
      continue
    price = parse_price(fields[pi])
    stats["rows"] += 1
    stats["prices_masked"] += int(math.isnan(price))
    rows.append(example(text, price=price))
  splits = split_rows(rows, 50, 50)
  if not splits["train"]:
    raise UserError(f"{path}: no rows with a non-empty {text_column!r} column")
  stats.update({f"{s}_examples": len(v) for s, v in splits.items()})
  return splits, stats
