"""Translate a split (or raw lines) and score it: sacreBLEU metrics plus every head's metrics."""
import time
from typing import Dict, List

import numpy as np
import tensorflow as tf

from configs.config import EvalConfig
from evaluation.scorers import score_corpus
from model import decoding


def make_decoder(model, eval_config: EvalConfig):
  """A traced `source [B, S] -> ids [B, L]` function (one trace for all shapes)."""
  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)], reduce_retracing=True)
  def decode(source):
    return decoding.decode(model, source, eval_config.beam_size, eval_config.length_penalty,
                           eval_config.max_decode_length)
  return decode


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


def make_stats_fn(model, heads):
  """A traced `batch -> {head: additive metric statistics}` (teacher forcing, training=False)."""
  @tf.function(reduce_retracing=True)
  def stats_fn(batch):
    outputs = model(batch, training=False)
    return {head.head_name: head.metric_stats(outputs, batch) for head in heads}
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


def evaluate_split(components, eval_config: EvalConfig, split: str) -> Dict:
  """BLEU/chrF/TER of beam-search translations of `split`, plus each head's metrics.

  Returns the metrics dict (with "hypotheses" holding the translations, to be popped by callers).
  """
  bundle, model = components.bundle, components.model
  dataset = bundle.eval_dataset(split, eval_config.eval_batch_size, eval_config.max_eval_examples)
  start = time.time()
  decode_fn = make_decoder(model, eval_config)
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
  metrics.update(head_metrics(components, [dataset] + extra))
  metrics.update(split=split, examples=len(hypotheses), hypotheses=hypotheses)
  return metrics


def head_metrics(components, datasets) -> Dict:
  """{head name: {metric: value}} over the split of every source (e.g. prices come from the
  listings, translation from the main corpus)."""
  stats_fn = make_stats_fn(components.model, components.heads)
  totals: Dict[str, Dict[str, np.ndarray]] = {}
  for dataset in datasets:
    head_metric_stats(stats_fn, dataset, totals)
  result = {}
  for head in components.heads:
    values = head.metric_results(totals.get(head.head_name, {}))
    if values:
      result[head.head_name] = {k: round(float(v), 4) for k, v in values.items()}
  return result

