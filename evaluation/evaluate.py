"""Translate a split (or raw lines) and score it: sacreBLEU metrics plus every head's metrics."""
import itertools
import time
import weakref
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from configs.config import EvalConfig
from evaluation.scorers import score_corpus
from heads.base import call_head, float32_outputs
from model import decoding

TRANSLATE_WINDOW_LINES = 1000  # --mode=translate reads, sorts and decodes this many lines at once

# model -> {key: tf.function}: evaluation's traced functions, made once per model and settings,
# so a run's validations reuse one trace instead of tracing beam search at every validation.
_TRACED = weakref.WeakKeyDictionary()


def traced_once(model, key: tuple, make: Callable):
  """`make()` the first time (model, key) is asked for, the same function afterwards."""
  functions = _TRACED.setdefault(model, {})
  if key not in functions:
    functions[key] = make()
  return functions[key]


def make_decoder(model, eval_config: EvalConfig):
  """A traced `source [B, S] -> ids [B, L]` function (one trace for all shapes).

  Without AutoGraph: the searches are explicit `tf.while_loop`s (model/decoding.py), so there is
  nothing to convert, and skipping the conversion makes the first trace (translate's start-up)
  about a third faster (docs/results.md, issue 19)."""
  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True,
               autograph=False)
  def decode(source):
    return decoding.decode(model, source, eval_config.beam_size, eval_config.length_penalty,
                           eval_config.max_decode_length)
  return decode


def run_decoder(model, eval_config: EvalConfig):
  """`make_decoder`, made once per model and decoding settings (validations reuse its trace)."""
  key = ("decode", eval_config.beam_size, eval_config.length_penalty,
         eval_config.max_decode_length)
  return traced_once(model, key, lambda: make_decoder(model, eval_config))


def translate_batches(decode_fn, batches, tokenizer, batch_size: int) -> List[str]:
  """Translates every `source` row of `batches`; results in input order.

  The rows are re-batched by length (shortest first) before decoding: one long sentence in a
  batch makes every sentence of that batch decode up to its length limit, so mixing lengths
  made evaluation several times slower.
  """
  rows = [row[row != 0] for batch in batches for row in batch["source"].numpy()]
  order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
  hypotheses: List[str] = [""] * len(rows)
  for start in range(0, len(order), batch_size):
    chunk = order[start:start + batch_size]
    width = max(len(rows[i]) for i in chunk)
    padded = np.zeros([len(chunk), width], np.int32)
    for j, i in enumerate(chunk):
      padded[j, :len(rows[i])] = rows[i]
    for i, text in zip(chunk, tokenizer.detokenize(decode_fn(tf.constant(padded)).numpy())):
      hypotheses[i] = text
  return hypotheses


def token_batches(lengths: Sequence[int], batch_tokens: int, max_sentences: int = 0
                  ) -> List[List[int]]:
  """Indices of `lengths` sorted by length (stable), cut into batches of at most `batch_tokens`
  padded tokens (sentences x longest); a sentence longer than the budget gets its own batch.
  With batch_tokens 0, batches of `max_sentences` sentences instead."""
  order = sorted(range(len(lengths)), key=lambda i: lengths[i])
  batches: List[List[int]] = []
  for i in order:
    current = batches[-1] if batches else None
    if current is not None and (
        (batch_tokens and (len(current) + 1) * max(lengths[i], 1) <= batch_tokens) or
        (not batch_tokens and len(current) < max_sentences)):
      current.append(i)
    else:
      batches.append([i])
  return batches


def pad_rows(rows: Sequence[np.ndarray]) -> np.ndarray:
  """int32 [N, longest] with each row left-aligned and 0 (pad) after it."""
  padded = np.zeros([len(rows), max(max(len(r) for r in rows), 1)], np.int32)
  for j, row in enumerate(rows):
    padded[j, :len(row)] = row
  return padded


def translate_stream(lines: Iterable[str], encode_fn: Callable, decode_fn: Callable,
                     batch_tokens: int, max_sentences: int,
                     window: int = 0) -> Iterator[Tuple[str, object]]:
  """(line, result) for every input line, in input order, produced window by window.

  `lines` is consumed lazily, `window` lines at a time (stdin need not reach EOF before output
  starts). Inside a window the sentences are sorted by length and decoded in token-budget
  batches (`token_batches`), then put back in input order.

  Args:
    lines: source sentences (an iterator is read lazily).
    encode_fn: list of strings -> list of int id arrays (no padding).
    decode_fn: int32 [B, S] padded sources -> a list of B results.
    batch_tokens: padded source tokens per batch (0 = `max_sentences` sentences per batch).
    max_sentences: sentences per batch when batch_tokens is 0.
    window: lines read, sorted and decoded together (0 = TRANSLATE_WINDOW_LINES).
  """
  window = window or TRANSLATE_WINDOW_LINES
  iterator = iter(lines)
  while True:
    chunk = list(itertools.islice(iterator, window))
    if not chunk:
      return
    rows = encode_fn(chunk)
    results: List[object] = [None] * len(chunk)
    for batch in token_batches([len(r) for r in rows], batch_tokens, max_sentences):
      for i, result in zip(batch, decode_fn(pad_rows([rows[i] for i in batch]))):
        results[i] = result
    yield from zip(chunk, results)


def make_stats_fn(model, heads):
  """A traced `batch -> {head: additive metric statistics}` (teacher forcing, training=False)."""
  @tf.function(reduce_retracing=True)
  def stats_fn(batch):
    outputs = float32_outputs(model(batch, training=False))
    return {head.head_name: call_head(head, head.metric_stats, outputs, batch) for head in heads}
  return stats_fn


def head_metric_stats(stats_fn, batches, totals) -> Dict[str, Dict[str, np.ndarray]]:
  """Adds every head's metric statistics over `batches` into `totals`."""
  for batch in batches:
    tensors = {k: v for k, v in batch.items() if k not in ("source_text", "target_text")}
    for head_name, stats in stats_fn(tensors).items():
      acc = totals.setdefault(head_name, {})
      for key, value in stats.items():
        acc[key] = acc.get(key, 0) + value.numpy()
  return totals


def evaluate_split(components, eval_config: EvalConfig, split: str,
                   head_totals: Optional[Dict] = None) -> Dict:
  """BLEU/chrF/TER of beam-search translations of `split`, plus each head's metrics.

  Returns the metrics dict (with "hypotheses" holding the translations, to be popped by callers).
  `head_totals`, when given, receives the heads' summed metric statistics (e.g. confusions).
  """
  bundle, model = components.bundle, components.model
  dataset = bundle.eval_dataset(split, eval_config.eval_batch_size, eval_config.max_eval_examples)
  start = time.time()
  decode_fn = run_decoder(model, eval_config)
  references = [t.decode("utf-8") for batch in dataset for t in batch["target_text"].numpy()]
  if any(references):
    hypotheses = translate_batches(decode_fn, dataset, bundle.target_tokenizer,
                                   eval_config.eval_batch_size)
    metrics = score_corpus(hypotheses, references)
  else:  # a split without translations (e.g. the listings alone): heads only
    hypotheses, metrics = [], {}
  metrics["decode_seconds"] = round(time.time() - start, 2)
  extra = [bundle.eval_dataset(split, eval_config.eval_batch_size, eval_config.max_eval_examples,
                               source=i) for i in range(1, len(bundle.config.sources))]
  metrics.update(head_metrics(components, [dataset] + extra, head_totals))
  metrics.update(split=split, examples=len(hypotheses), hypotheses=hypotheses)
  return metrics


def head_metrics(components, datasets, totals: Optional[Dict] = None) -> Dict:
  """{head name: {metric: value}} over the split of every source (e.g. prices come from the
  listings, translation from the main corpus); the summed statistics go into `totals`."""
  stats_fn = traced_once(components.model, ("stats",) + tuple(id(h) for h in components.heads),
                         lambda: make_stats_fn(components.model, components.heads))
  totals = {} if totals is None else totals
  for dataset in datasets:
    head_metric_stats(stats_fn, dataset, totals)
  result = {}
  for head in components.heads:
    values = head.metric_results(totals.get(head.head_name, {}))
    if values:
      result[head.head_name] = {k: round(float(v), 4) for k, v in values.items()}
  return result

