"""Sources read from plain text files: `parallel_text` (line-aligned, optionally with Pharaoh word
alignments) and `tsv` (text + price).

Every problem a user can fix is one UserError line naming the file (and line) and what is accepted.
"""
import glob
import math
import os
import re
import itertools
from typing import Iterator, List, Optional, Sequence, Tuple

from configs.errors import UserError
from data.registry import (SPLITS, Splits, collect, example, hash_split, register_source,
                           register_stream)

EMBEDDED_TSV = os.path.join(os.path.dirname(__file__), "files", "listings_berlin_2025-09.tsv")
_PREFIXES = {"train": ("train",), "validation": ("val", "valid", "validation", "dev"),
             "test": ("test",)}
_LINK = re.compile(r"([0-9]+)-([0-9]+)")


def iter_lines(path: str, what: str = "data file", allow_empty: bool = False) -> Iterator[str]:
  """The UTF-8 lines of `path` (no line ends, a leading BOM dropped), read lazily: the one line
  reader of auxseq (data files, --input_file, --reference_file).

  Raises (when iterated):
    UserError: `path` missing, not UTF-8 (naming the line), or empty unless `allow_empty`.
  """
  if not os.path.isfile(path):
    raise UserError(f"{what} {path!r} does not exist")
  with open(path, "rb") as f:
    number = 0
    for number, raw in enumerate(f, 1):
      try:
        line = raw.decode("utf-8").rstrip("\n").rstrip("\r")
      except UnicodeDecodeError as e:
        raise UserError(f"{path}:{number}: invalid UTF-8 at byte {e.start} of the line; "
                        f"{what} {path!r} must be UTF-8") from None
      yield line.lstrip("\ufeff") if number == 1 else line
  if not number and not allow_empty:
    raise UserError(f"{what} {path!r} is empty")


def read_lines(path: str, what: str = "data file", allow_empty: bool = False) -> List[str]:
  """`iter_lines` as a list."""
  if not os.path.isfile(path):  # before anything is read, also for allow_empty
    raise UserError(f"{what} {path!r} does not exist")
  return list(iter_lines(path, what, allow_empty))


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


def _count_rest(lines: Iterator[str], counted: int) -> int:
  return counted + sum(1 for _ in lines)


def _aligned_pairs(src_path: str, tgt_path: str, align_path: Optional[str],
                   counts: dict) -> Iterator[dict]:
  """The pairs of one split, streamed; `counts` gets `blank` and `aligned` as they go.

  Raises (when iterated): UserError on mismatched line counts (naming both files and their
  totals), malformed alignment lines and anything `iter_lines` rejects.
  """
  src, tgt = iter_lines(src_path), iter_lines(tgt_path)
  align = iter_lines(align_path) if align_path else itertools.repeat("")
  number = 0
  for number, s in enumerate(src, 1):
    t, a = next(tgt, None), next(align, None)
    if t is None:
      raise UserError(f"{src_path} has {_count_rest(src, number)} lines but {tgt_path} has "
                      f"{number - 1}; parallel files must have one line per sentence pair")
    if a is None:
      raise UserError(f"{align_path} has {number - 1} lines but {src_path} and {tgt_path} have "
                      f"{_count_rest(src, number)}; an alignment file needs one line per "
                      "sentence pair")
    s, t = s.split(), t.split()
    links = parse_alignment(a, len(s), len(t), f"{align_path}:{number}") if a.strip() else ""
    if s and t:
      counts["aligned"] += bool(links)
      yield example(" ".join(s), " ".join(t), alignment=links)
    else:
      counts["blank"] += 1
  extra = sum(1 for _ in tgt)
  if extra:
    raise UserError(f"{src_path} has {number} lines but {tgt_path} has {number + extra}; "
                    "parallel files must have one line per sentence pair")
  extra = sum(1 for _ in align) if align_path else 0
  if extra:
    raise UserError(f"{align_path} has {number + extra} lines but {src_path} and {tgt_path} "
                    f"have {number}; an alignment file needs one line per sentence pair")


@register_stream("parallel_text")
def stream_parallel_text(data_dir: str, source_lang: str, target_lang: str):
  """`read_parallel_text` as a stream: (iterator of (split, example), stats filled while it runs).

  Every split's files are found before the first line is read (a missing file fails at once).
  """
  if not data_dir or not os.path.isdir(data_dir):
    raise UserError(f"dataset parallel_text needs --data_dir=DIR holding train/val/test "
                    f"files; {data_dir!r} is not a directory")
  files = {}
  for split in SPLITS:
    src_path = find_split_file(data_dir, split, source_lang)
    tgt_path = find_split_file(data_dir, split, target_lang)
    files[split] = (src_path, tgt_path, find_alignment_file(src_path, source_lang, target_lang))
  stats = {"blank_lines_skipped": 0}

  def rows():
    for split, (src_path, tgt_path, align_path) in files.items():
      counts = {"blank": 0, "aligned": 0, "examples": 0}
      for row in _aligned_pairs(src_path, tgt_path, align_path, counts):
        counts["examples"] += 1
        yield split, row
      stats["blank_lines_skipped"] += counts["blank"]
      stats[f"{split}_examples"] = counts["examples"]
      stats[f"{split}_files"] = [os.path.basename(p) for p in (src_path, tgt_path, align_path)
                                 if p]
      if align_path:
        stats[f"{split}_aligned"] = counts["aligned"]
    if not stats["train_examples"]:
      raise UserError(f"dataset parallel_text: every line of the train files in {data_dir!r} "
                      "is blank on one side; nothing to train on")
  return rows(), stats


@register_source("parallel_text", "line-aligned DATA_DIR/{train,val,test*}.<lang> files, "
                 "e.g. ../shared/data/multi30k as it is; optional <split>.align word alignments")
def read_parallel_text(data_dir: str, source_lang: str, target_lang: str) -> Tuple[Splits, dict]:
  """One sentence a line per split and language; pairs with a blank side skipped and counted.

  An optional word alignment file per split beside the text files (`find_alignment_file`) fills
  each example's `alignment`; stats then list it among the split's files and count the pairs
  with at least one link (`<split>_aligned`). Collects `stream_parallel_text`.
  """
  return collect(*stream_parallel_text(data_dir, source_lang, target_lang))


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


TSV_FIELD_SEPARATOR = " · "


def tsv_header(data_dir: str) -> List[str]:
  """The column names of the tsv source's file (its first line): for checking flags early."""
  return next(iter_lines(_tsv_path(data_dir))).split("\t")


@register_stream("tsv")
def stream_tsv(data_dir: str, source_lang: str, target_lang: str,
               text_columns: Sequence[str] = ("name",), price_column: str = "price"):
  """`read_tsv` as a stream: (iterator of (split, example), stats filled while it runs).

  The text is the first of `text_columns` (a listing's title), then each further non-empty one
  (e.g. room type, neighbourhood), joined by " · ". The split hashes the first column only, so
  adding columns keeps every row in its split."""
  del source_lang, target_lang
  path = _tsv_path(data_dir)
  lines = iter_lines(path)
  header = next(lines).split("\t")
  for column in (*text_columns, price_column):
    if column not in header:
      raise UserError(f"{path}:1: no column {column!r} in the header; columns: "
                      f"{', '.join(header)}")
  text_at = [header.index(c) for c in text_columns]
  pi = header.index(price_column)
  stats = {"rows": 0, "prices_masked": 0, "blank_lines_skipped": 0}
  stats.update({f"{s}_examples": 0 for s in SPLITS})

  def rows():
    for number, line in enumerate(lines, 2):
      fields = line.split("\t")
      if len(fields) != len(header):
        if not line.strip():
          stats["blank_lines_skipped"] += 1
          continue
        raise UserError(f"{path}:{number}: {len(fields)} tab-separated fields, the header has "
                        f"{len(header)}")
      parts = [" ".join(fields[i].split()) for i in text_at]
      if not parts[0]:
        stats["blank_lines_skipped"] += 1
        continue
      price = parse_price(fields[pi])
      stats["rows"] += 1
      stats["prices_masked"] += int(math.isnan(price))
      split = hash_split(parts[0], 50, 50)
      stats[f"{split}_examples"] += 1
      yield split, example(TSV_FIELD_SEPARATOR.join(p for p in parts if p), price=price)
    if not stats["train_examples"]:
      raise UserError(f"{path}: no rows with a non-empty {text_columns[0]!r} column")
  return rows(), stats


@register_source("tsv", "tab-separated text (`name`, or --tsv_text_columns) + `price` column, "
                 "no translation (default: the embedded Inside Airbnb Berlin listings, CC BY 4.0)")
def read_tsv(data_dir: str, source_lang: str, target_lang: str,
             text_columns: Sequence[str] = ("name",),
             price_column: str = "price") -> Tuple[Splits, dict]:
  """Text + price rows split 90/5/5 by hash of the title; bad prices become NaN and are
  counted. Collects `stream_tsv`."""
  return collect(*stream_tsv(data_dir, source_lang, target_lang, text_columns, price_column))
