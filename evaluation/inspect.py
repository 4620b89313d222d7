"""Pictures of what the heads do: `--mode=inspect` and the TensorBoard images of validation.

For each sentence: beam-search translation, then one teacher-forced pass of the model on
`[BOS] + hypothesis` (training=False), whose cross-attention row t is exactly the attention
while producing output token t. The grid has one heatmap per (decoder layer, head); pairs that
an attention regulariser (any head reading `cross_attention`, e.g. attention_entropy) acts on
are framed in red.

  run_inspect(c, lines, out_dir, predict)  # WORKDIR/inspect/: PNGs, inspect.jsonl, index.html
  write_validation_images(c, writer, step, sentences)  # TensorBoard: attention, confusions
"""
import dataclasses
import functools
import html
import json
import os
import shutil
import tempfile
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import sentencepiece as spm
import tensorflow as tf

from data.tokenizer import BOS, EOS
from evaluation import plots
from evaluation.evaluate import head_metric_stats, make_decoder, make_stats_fn, run_decoder
from model import outputs as out

Pair = Tuple[int, int]


@dataclasses.dataclass
class Inspection:
  """One sentence: ids, translation and cross-attention [L, H, T, S] (T output tokens incl. EOS,
  S source tokens incl. EOS, no padding)."""
  source: str
  source_ids: np.ndarray
  output_ids: np.ndarray
  translation: str
  attention: np.ndarray
  predictions: Dict[str, object] = dataclasses.field(default_factory=dict)


def _hypothesis(ids: np.ndarray) -> np.ndarray:
  """Output tokens of one decoded row: up to and including the first EOS, never empty."""
  ids = ids[ids != 0]
  ends = np.flatnonzero(ids == EOS)
  ids = ids[:ends[0] + 1] if ends.size else ids
  return ids if ids.size else np.array([EOS], np.int32)


def teacher_forced_attention(model, source: np.ndarray, outputs: List[np.ndarray]) -> np.ndarray:
  """Cross-attention of `model` producing `outputs` (one id array per source row) from `source`
  [B, S], via target_in = [BOS] + outputs[:-1]. Returns float32 [B, L, H, T, S] (padded)."""
  width = max(len(o) for o in outputs)
  target_in = np.zeros([len(outputs), width], np.int32)
  for i, ids in enumerate(outputs):
    target_in[i, :len(ids)] = np.concatenate([[BOS], ids[:-1]])
  result = model({"source": tf.constant(source, tf.int32), "target_in": tf.constant(target_in)},
                 training=False)
  layers = [tf.cast(a, tf.float32).numpy() for a in result[out.CROSS_ATTENTION]]
  return np.stack(layers, axis=1)


def inspect_sentences(c, lines: Sequence[str], decode_fn, predict: Callable = None,
                      batch_size: int = 16) -> List[Inspection]:
  """Translates `lines` and collects each one's exact cross-attention (and head predictions)."""
  items: List[Inspection] = []
  for batch in c.bundle.text_dataset(list(lines), batch_size):
    source = batch["source"].numpy()
    outputs = [_hypothesis(row) for row in decode_fn(batch["source"]).numpy()]
    attention = teacher_forced_attention(c.model, source, outputs)
    texts = c.bundle.target_tokenizer.detokenize([o.tolist() for o in outputs])
    preds = _described(c, predict(c, batch["source"])) if predict else {}
    for i, ids in enumerate(outputs):
      s_len = int(np.count_nonzero(source[i]))
      line = lines[len(items)]
      items.append(Inspection(line, source[i, :s_len], ids, texts[i],
                              attention[i, :, :, :len(ids), :s_len],
                              {k: v[i] for k, v in preds.items()}))
  return items


def _described(c, predictions: Dict[str, list]) -> Dict[str, list]:
  """Bucket ids (`<head>/price_bucket`) with their range, e.g. `2 (12-30)`."""
  heads = {h.head_name: h for h in c.heads}
  result = dict(predictions)
  for key, values in predictions.items():
    head = heads.get(key.split("/")[0])
    if key.endswith("_bucket") and getattr(head, "edges", None) is not None:
      names = class_names(head, len(head.edges) + 1)
      result[key] = [f"{v} ({names[v]})" if 0 <= v < len(names) else v for v in values]
  return result


@functools.lru_cache(maxsize=8)
def _processor(model_path: str) -> spm.SentencePieceProcessor:
  return spm.SentencePieceProcessor(model_file=model_path)


def token_labels(tokenizer, ids) -> List[str]:
  """Subword pieces of `ids` as SentencePiece writes them (`▁` starts a word); EOS is `</s>`."""
  sp = _processor(tokenizer.model_path)
  return ["</s>" if int(i) == EOS else sp.id_to_piece(int(i)) for i in ids]


def regularised_pairs(heads, num_layers: int, num_heads: int) -> Dict[Pair, List[str]]:
  """{(layer, head): names of the heads reading that cross-attention pair}. A head reading
  `cross_attention` without `layer_ids` / `head_ids` (a user's own) counts as reading all."""
  pairs: Dict[Pair, List[str]] = {}
  for head in heads:
    if out.CROSS_ATTENTION not in head.reads:
      continue
    for layer in getattr(head, "layer_ids", range(num_layers)):
      for h in getattr(head, "head_ids", range(num_heads)):
        pairs.setdefault((layer, h), []).append(head.head_name)
  return pairs


def _legend(marked: Dict[Pair, List[str]]) -> str:
  by_head: Dict[str, List[str]] = {}
  for (layer, h), names in sorted(marked.items()):
    for name in names:
      by_head.setdefault(name, []).append(f"L{layer}H{h}")
  if not by_head:
    return "no attention regulariser"
  return "red frame = regularised: " + "; ".join(f"{n} on {', '.join(p)}"
                                                   for n, p in by_head.items())


def _format(value) -> str:
  return f"{value:.4g}" if isinstance(value, float) else str(value)


def sentence_figure(c, item: Inspection, marked: Dict[Pair, List[str]]):
  """The heatmap grid of one sentence, captioned with its translation and predictions."""
  caption = [f"source: {item.source}", f"translation: {item.translation}"]
  if item.predictions:
    caption.append("predictions: " + ", ".join(f"{k} = {_format(v)}"
                                                for k, v in item.predictions.items()))
  caption.append(_legend(marked))
  return plots.attention_grid(item.attention, token_labels(c.bundle.source_tokenizer,
                                                           item.source_ids),
                              token_labels(c.bundle.target_tokenizer, item.output_ids),
                              marked, caption)


def _index_html(records: List[dict], legend: str) -> str:
  parts = ["<!doctype html>", "<html><head><meta charset=\"utf-8\">",
           "<title>auxseq inspect</title><style>body{font-family:sans-serif;margin:1em}"
           "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;"
           "padding:2px 8px;text-align:left;vertical-align:top}img{max-width:100%}</style>",
           "</head><body>", f"<h1>Cross-attention of {len(records)} sentences</h1>",
           "<p>One heatmap per decoder layer (row) and head (column): output tokens down, source "
           f"tokens across. {html.escape(legend)}. Click a picture for full size.</p>"]
  for i, record in enumerate(records):
    rows = [("source", record["source"]), ("translation", record["translation"])]
    rows += [(k, _format(v)) for k, v in record["predictions"].items()]
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                    for k, v in rows)
    image = html.escape(record["image"])
    parts.append(f"<section id=\"s{i + 1}\"><h2>{i + 1}.</h2><table>{table}</table>"
                 f"<a href=\"{image}\"><img src=\"{image}\" alt=\"attention grid of sentence "
                 f"{i + 1}\"></a></section>")
  parts.append("</body></html>")
  return "\n".join(parts) + "\n"


def _write_dir(out_dir: str, c, items: List[Inspection], marked) -> List[dict]:
  records = []
  for i, item in enumerate(items):
    image = f"sentence_{i + 1:03d}.png"
    fig = sentence_figure(c, item, marked)
    plots.save_png(fig, os.path.join(out_dir, image))
    records.append({"source": item.source, "translation": item.translation,
                    "predictions": item.predictions, "image": image,
                    "panels": len(fig.heatmap_axes) * len(fig.heatmap_axes[0]),
                    "source_tokens": token_labels(c.bundle.source_tokenizer, item.source_ids),
                    "output_tokens": token_labels(c.bundle.target_tokenizer, item.output_ids),
                    "regularised": sorted([list(p) for p in marked])})
  with open(os.path.join(out_dir, "inspect.jsonl"), "w", encoding="utf-8") as f:
    f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
  with open(os.path.join(out_dir, "index.html"), "w", encoding="utf-8") as f:
    f.write(_index_html(records, _legend(marked)))
  return records


def run_inspect(c, lines: Sequence[str], out_dir: str, predict: Callable = None) -> dict:
  """Writes `out_dir` (replaced as a whole, never half-written): one PNG per line,
  inspect.jsonl (translation, predictions, tokens per sentence) and index.html."""
  decode_fn = make_decoder(c.model, c.config.eval)
  items = inspect_sentences(c, lines, decode_fn, predict, c.config.eval.eval_batch_size)
  marked = regularised_pairs(c.heads, c.model.num_cross_attention_layers,
                             c.model.num_attention_heads)
  parent = os.path.dirname(os.path.abspath(out_dir))
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".inspect-", dir=parent)
  os.chmod(tmp, 0o755)  # mkdtemp makes it private; the pictures are meant to be shared
  try:
    records = _write_dir(tmp, c, items, marked)
    if os.path.exists(out_dir):
      os.rename(out_dir, tmp + "-old")
    os.rename(tmp, out_dir)
  finally:
    for leftover in (tmp, tmp + "-old"):
      shutil.rmtree(leftover, ignore_errors=True)
  return {"kind": "inspect", "path": out_dir, "index": os.path.join(out_dir, "index.html"),
          "sentences": len(records), "panels": records[0]["panels"] if records else 0}


def fixed_validation_sentences(c, count: int = 3, split: str = "validation") -> List[str]:
  """The first `count` source sentences of `split` of the main source (fixed across a run)."""
  batches = c.bundle.eval_dataset(split, count, count)
  return [t.decode("utf-8") for b in batches for t in b["source_text"].numpy()][:count]


def class_names(head, count: int) -> List[str]:
  """Names of a classifier's classes: price ranges from bucket edges, catalog names from the
  label facts (e.g. domain), else the class ids."""
  edges = getattr(head, "edges", None)
  if edges is not None and len(edges) + 1 == count:
    e = [f"{float(v):.4g}" for v in np.asarray(edges)]
    return [f"<{e[0]}"] + [f"{a}-{b}" for a, b in zip(e, e[1:])] + [f">={e[-1]}"]
  for label in head.labels:
    names = head.context.label_info.get(label)
    if isinstance(names, tuple) and len(names) == count:
      return list(names)
  return [str(i) for i in range(count)]


def validation_confusions(c, split: str = "validation") -> Dict[str, np.ndarray]:
  """{head name: [C, C] confusion (label row, prediction column)} of every classification head
  (a head whose metric_stats hold `confusion`) over `split` of every source that has it; heads
  without a labelled example there are left out."""
  heads = [h for h in c.heads if h.head_name != "translation"]
  if not heads:
    return {}
  cfg, totals = c.config.eval, {}
  stats_fn = make_stats_fn(c.model, heads)
  for i, builder in enumerate(c.bundle.builders):
    if split in builder.info.splits:
      head_metric_stats(stats_fn, c.bundle.eval_dataset(split, cfg.eval_batch_size,
                                                        cfg.max_eval_examples, source=i), totals)
  return confusions(totals)


def confusions(head_totals: Dict) -> Dict[str, np.ndarray]:
  """The non-empty confusion matrices among summed head statistics ({head: {stat: array}})."""
  return {name: stats["confusion"] for name, stats in head_totals.items()
          if "confusion" in stats and stats["confusion"].sum() > 0}


def _image_tensor(fig, dpi: int = 90) -> tf.Tensor:
  return tf.image.decode_png(plots.png_bytes(fig, dpi), channels=3)[None]


def write_validation_images(components, writer, step: int, sentences: Sequence[str],
                            head_totals: Optional[Dict] = None) -> None:
  """TensorBoard images at `step`: `attention/sentence_<i>` (the grid of each of `sentences`)
  and `confusion/<head>` (each classification head over the validation split; from
  `head_totals` when the caller has just evaluated it, else from a pass of its own)."""
  c = components
  items = inspect_sentences(c, sentences, run_decoder(c.model, c.config.eval))
  marked = regularised_pairs(c.heads, c.model.num_cross_attention_layers,
                             c.model.num_attention_heads)
  by_name = {h.head_name: h for h in c.heads}
  with writer.as_default(step=step):
    for i, item in enumerate(items):
      tf.summary.image(f"attention/sentence_{i}", _image_tensor(sentence_figure(c, item, marked)))
    matrices = validation_confusions(c) if head_totals is None else confusions(head_totals)
    for name, matrix in matrices.items():
      fig = plots.confusion_figure(matrix, class_names(by_name[name], len(matrix)), name)
      tf.summary.image(f"confusion/{name}", _image_tensor(fig))
  writer.flush()
