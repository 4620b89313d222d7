"""Streaming preparation of one data source into the shared cache of prepared data.

One pass reads the source (`registry.get_stream`), writes every example as one tab-separated
line of its split file and counts as it goes: the reader's statistics, the label facts (domain
names, a bounded sample of the prices, aligned pairs) and a histogram of words per pair. Memory is
bounded by the largest of: one example, the price sample, and one training shard while it is
shuffled. Training splits longer than `SHARD_EXAMPLES` are shuffled globally here (random
assignment to shards, then each shard permuted in memory); shorter ones keep file order, and the
training stream's shuffle buffer mixes them as before.

Layout: CACHE/<key>/ with `train-00000-of-0000K.tsv`, `validation.tsv`, `test.tsv` (lines
`source \\t target \\t domain \\t price \\t alignment`) and `info.json`. The key fingerprints
the reader, its files (path, size, mtime), the languages and this format's version. The
directory appears by one rename, complete; a process that is not the chief waits for it.
"""
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
import time
from typing import Dict, Iterable, List, Optional

import numpy as np

from configs.errors import UserError
from data import registry, sources

FORMAT_VERSION = 1  # bump when the files, the filters or the shuffling change
SHARD_EXAMPLES = 250_000  # training shard size; a larger train split is shuffled globally
PRICE_SAMPLE = 100_000  # prices kept for the label facts (a seeded reservoir beyond that)
SHUFFLE_SEED = 0  # preparation's global shuffle is one fixed permutation of the data
WAIT_SECONDS = 6 * 3600  # how long a worker waits for the chief's preparation
FIELDS = ("source", "target", "domain", "price", "alignment")
WORD_BINS = (8, 16, 32, 64, 128, 256)  # histogram of max(source, target) words per pair


def default_cache_dir() -> str:
  """$XDG_CACHE_HOME/auxseq/data, else ~/.cache/auxseq/data."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(base, "auxseq", "data")


def watched_path(reader: str, data_dir: str, target_lang: str) -> str:
  """The files whose change must prepare the source again."""
  if reader == "gettext":
    return os.path.join(data_dir or sources.DEFAULT_LOCALE_ROOT, target_lang, "LC_MESSAGES")
  if reader == "tsv" and not data_dir:
    return sources.EMBEDDED_TSV
  return os.path.abspath(data_dir) if data_dir else ""


def files_fingerprint(path: str) -> list:
  """Path, size and mtime of every file under `path` (sorted; stat calls only)."""
  if not path or not os.path.exists(path):
    return [path]
  files = [path] if os.path.isfile(path) else sorted(
      os.path.join(d, f) for d, _, names in os.walk(path) for f in names)
  return [(f, os.path.getsize(f), int(os.path.getmtime(f))) for f in files]


def source_key(reader: str, data_dir: str, source_lang: str, target_lang: str,
               options: Optional[dict] = None) -> str:
  """`<reader>_<src>_<tgt>_<12 hex>`: what the prepared files depend on (the reader's options
  only when given, so that sources read without any keep their keys)."""
  facts = [FORMAT_VERSION, SHARD_EXAMPLES, PRICE_SAMPLE, reader,
           os.path.abspath(data_dir) if data_dir else "", source_lang, target_lang,
           files_fingerprint(watched_path(reader, data_dir, target_lang))]
  if options:
    facts.append(sorted(options.items()))
  digest = hashlib.sha256(json.dumps(facts).encode("utf-8")).hexdigest()[:12]
  return f"{reader}_{source_lang}_{target_lang}_{digest}"


class SplitInfo:
  def __init__(self, num_examples: int):
    self.num_examples = num_examples


class PreparedSource:
  """A prepared source in the cache: its split files, statistics and label facts.

  Attributes:
    path: CACHE/<key>.
    splits: {split: SplitInfo} of the non-empty splits.
    auxseq_stats: the reader's statistics plus `train_words_histogram`.
    labels: {"domains": sorted names, "prices": finite training prices (float32-rounded; a
      sample of PRICE_SAMPLE when there are more), "aligned": training pairs with links}.
  """

  def __init__(self, path: str):
    self.path = path
    with open(os.path.join(path, "info.json"), encoding="utf-8") as f:
      info = json.load(f)
    self.files: Dict[str, List[str]] = info["files"]
    self.splits = {s: SplitInfo(n) for s, n in info["examples"].items() if n}
    self.auxseq_stats, self.labels = info["stats"], info["labels"]

  @property
  def info(self):
    """TFDS-like `info.splits` (callers check `split in source.info.splits`)."""
    return self

  def split_files(self, split: str) -> List[str]:
    return [os.path.join(self.path, name) for name in self.files.get(split, [])]

  def lines(self, split: str) -> Iterable[str]:
    """The split's lines in stored order (training: shard by shard), read lazily."""
    for path in self.split_files(split):
      with open(path, encoding="utf-8") as f:
        for line in f:
          yield line.rstrip("\n")

  def rows(self, split: str) -> List[dict]:
    """The split as Python dicts (str texts, float price), in stored order (small splits)."""
    return [parse_line(line) for line in self.lines(split)]


def format_line(row: dict) -> str:
  price = "nan" if math.isnan(row["price"]) else repr(float(np.float32(row["price"])))
  fields = (row["source"], row["target"], row["domain"], price, row["alignment"])
  for field in fields:
    if "\t" in field or "\n" in field or "\r" in field:
      raise ValueError(f"a reader returned a field with a tab or line break: {field!r}; "
                       "readers normalise whitespace")
  return "\t".join(fields)


def parse_line(line: str) -> dict:
  row = dict(zip(FIELDS, line.split("\t")))
  row["price"] = float(row["price"])
  return row


class _Stats:
  """What preparation counts while streaming."""

  def __init__(self):
    self.examples = {s: 0 for s in registry.SPLITS}
    self.domains, self.aligned, self.seen_prices = set(), 0, 0
    self.prices: List[float] = []
    self.words = np.zeros(len(WORD_BINS) + 1, np.int64)
    self._rng = random.Random(SHUFFLE_SEED)

  def add(self, split: str, row: dict) -> None:
    self.examples[split] += 1
    if split != "train":
      return
    if row["domain"]:
      self.domains.add(row["domain"])
    self.aligned += bool(row["alignment"])
    words = max(len(row["source"].split()), len(row["target"].split()))
    self.words[np.searchsorted(WORD_BINS, words)] += 1
    if not math.isnan(row["price"]):
      self._add_price(float(np.float32(row["price"])))

  def _add_price(self, price: float) -> None:
    self.seen_prices += 1
    if len(self.prices) < PRICE_SAMPLE:
      self.prices.append(price)
    else:
      j = self._rng.randrange(self.seen_prices)
      if j < PRICE_SAMPLE:
        self.prices[j] = price


def _write_splits(rows, tmp: str, stats: _Stats) -> Dict[str, str]:
  """One pass: every (split, example) appended to its split file; train in file order."""
  names = {s: f"{s}.tsv" for s in registry.SPLITS}
  handles = {s: open(os.path.join(tmp, names[s]), "w", encoding="utf-8") for s in names}
  try:
    for split, row in rows:
      handles[split].write(format_line(row) + "\n")
      stats.add(split, row)
  finally:
    for handle in handles.values():
      handle.close()
  return names


def _shuffle_train(tmp: str, count: int) -> List[str]:
  """train.tsv -> K shards of a fixed random permutation (K = ceil(count / SHARD_EXAMPLES))."""
  path = os.path.join(tmp, "train.tsv")
  shards = max(1, math.ceil(count / SHARD_EXAMPLES))
  names = [f"train-{i:05d}-of-{shards:05d}.tsv" for i in range(shards)]
  if shards == 1:
    os.rename(path, os.path.join(tmp, names[0]))
    return names
  rng = random.Random(SHUFFLE_SEED)
  buckets = [open(os.path.join(tmp, f"bucket-{i}"), "w", encoding="utf-8") for i in range(shards)]
  with open(path, encoding="utf-8") as f:
    for line in f:
      buckets[rng.randrange(shards)].write(line)
  for bucket in buckets:
    bucket.close()
  os.remove(path)
  for i, name in enumerate(names):
    bucket = os.path.join(tmp, f"bucket-{i}")
    with open(bucket, encoding="utf-8") as f:
      lines = f.readlines()
    rng.shuffle(lines)
    with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
      f.writelines(lines)
    del lines
    os.remove(bucket)
  return names


def _build(reader: str, data_dir: str, source_lang: str, target_lang: str, final: str,
           options: dict) -> None:
  """Streams the source into a temporary directory beside `final`, then renames it."""
  rows, reader_stats = registry.get_stream(reader)(data_dir, source_lang, target_lang, **options)
  tmp = tempfile.mkdtemp(prefix=os.path.basename(final) + ".tmp-", dir=os.path.dirname(final))
  try:
    stats = _Stats()
    names = _write_splits(rows, tmp, stats)
    files = {"train": _shuffle_train(tmp, stats.examples["train"])}
    for split in ("validation", "test"):
      files[split] = [names[split]]
    reader_stats = dict(reader_stats, train_words_histogram={
        "bins": list(WORD_BINS), "counts": stats.words.tolist()})
    info = {"format": FORMAT_VERSION, "reader": reader, "data_dir": data_dir,
            "source_lang": source_lang, "target_lang": target_lang, "options": options,
            "files": files,
            "examples": stats.examples, "stats": reader_stats,
            "labels": {"domains": sorted(stats.domains), "prices": stats.prices,
                       "aligned": stats.aligned, "prices_seen": stats.seen_prices}}
    with open(os.path.join(tmp, "info.json"), "w", encoding="utf-8") as f:
      json.dump(info, f, sort_keys=True)
    try:
      os.rename(tmp, final)  # atomic; fails when another process got there first
    except OSError:
      if not os.path.exists(os.path.join(final, "info.json")):
        raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)


def wait_for(path: str, what: str, timeout: float = WAIT_SECONDS) -> None:
  """Blocks until `path` exists (the chief's completion marker)."""
  deadline = time.time() + timeout
  while not os.path.exists(path):
    if time.time() > deadline:
      raise UserError(f"waited {timeout:.0f} s for the chief worker to prepare {what} "
                      f"({path}); did the chief fail?")
    time.sleep(0.5)


def prepare(reader: str, data_dir: str, source_lang: str, target_lang: str,
            cache_dir: str = "", chief: bool = True, log=print,
            options: Optional[dict] = None) -> PreparedSource:
  """The prepared source from the cache, preparing it first if needed (the chief only).

  Args:
    reader: registered source name; data_dir, source_lang, target_lang: as for the reader.
    options: the reader's keyword options (tsv: `text_columns`); part of the cache key.
    cache_dir: where prepared data lives ("" = `default_cache_dir()`).
    chief: False on the other workers of a multi-worker run: they wait for the chief's files.
    log: one line when preparing (not when the cache has the source).

  Raises:
    UserError: unknown source, or any data error of the reader (nothing is left in the cache).
  """
  registry.get_reader(reader)  # unknown names fail before anything is written
  cache_dir = cache_dir or default_cache_dir()
  options = dict(options or {})
  final = os.path.join(cache_dir, source_key(reader, data_dir, source_lang, target_lang, options))
  marker = os.path.join(final, "info.json")
  if not os.path.exists(marker):
    if chief:
      os.makedirs(cache_dir, exist_ok=True)
      log(f"Preparing data from {watched_path(reader, data_dir, target_lang)} ({reader} "
          f"{source_lang}-{target_lang}) into {final}")
      start = time.time()
      _build(reader, data_dir, source_lang, target_lang, final, options)
      log(f"Prepared {final} in {time.time() - start:.1f} s")
    else:
      wait_for(marker, f"{reader} {source_lang}-{target_lang}")
  return PreparedSource(final)


def load(path: str) -> Optional[PreparedSource]:
  """The prepared source at `path`, or None when it is not (or no longer) in the cache."""
  return PreparedSource(path) if os.path.exists(os.path.join(path, "info.json")) else None
