"""Translate a split (or raw lines) and score it: sacreBLEU metrics plus every head's metrics."""
import time
from typing import Dict, List, Sequence

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


def translate_batches(decode_fn, batches, tokenizer) -> List[str]:
  """Decodes every batch's `source` in order and detokenises the results."""
  hypotheses = []
  for batch in batches:
    ids = decode_fn(tf.cast(batch["source"], tf.int32)).numpy()
    hypotheses.extend(tokenizer.detokenize(ids))
  return hypotheses


def head_metric_stats(model, heads, batches) -> Dict[str, Dict[str, np.ndarray]]:
  """Sums every head's additive metric statistics over teacher-forced batches (training=False)."""
  @tf.function(reduce_retracing=True)
  def stats_fn(batch):
    outputs = model(batch, training=False)
    return {head.head_name: head.metric_stats(outputs, batch) for head in heads}

  totals: Dict[str, Dict[str, np.ndarray]] = {}
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
  bundle, model, heads = components.bundle, components.model, components.heads
  dataset = bundle.eval_dataset(split, eval_config.eval_batch_size, eval_config.max_eval_examples)
  start = time.time()
  decode_fn = make_decoder(model, eval_config)
  hypotheses = translate_batches(decode_fn, dataset, bundle.target_tokenizer)
  references = [t.decode("utf-8") for batch in dataset for t in batch["target_text"].numpy()]
  metrics = score_corpus(hypotheses, references) if references else {}
  metrics["decode_seconds"] = round(time.time() - start, 2)
  extra = [bundle.eval_dataset(split, eval_config.eval_batch_size, eval_config.max_eval_examples,
                               source=i) for i in range(1, len(bundle.config.sources))]
  metrics.update(head_metrics(components, [dataset] + extra))
  metrics.update(split=split, examples=len(hypotheses), hypotheses=hypotheses)
  return metrics


def head_metrics(components, datasets) -> Dict:
  """{head name: {metric: value}} over the split of every source (e.g. prices come from the
  listings, translation from the main corpus)."""
  totals: Dict[str, Dict[str, np.ndarray]] = {}
  for dataset in datasets:
    for name, stats in head_metric_stats(components.model, components.heads, dataset).items():
      acc = totals.setdefault(name, {})
      for key, value in stats.items():
        acc[key] = acc.get(key, 0) + value
  result = {}
  for head in components.heads:
    values = head.metric_results(totals.get(head.head_name, {}))
    if values:
      result[head.head_name] = {k: round(float(v), 4) for k, v in values.items()}
  return result

