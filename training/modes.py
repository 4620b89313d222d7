"""One function per `--mode`, looked up in a registry by main.py."""
import json
import os
import sys
from typing import Callable, Dict

from absl import logging

from configs.config import Config
from configs.errors import UserError

_MODES: Dict[str, Callable[[Config], None]] = {}


def register_mode(name: str):
  def decorate(fn):
    _MODES[name] = fn
    return fn
  return decorate


def needs_tensorflow(config: Config) -> bool:
  """False only when CTranslate2 translates (--engine=ctranslate2, or auto with a current
  export) lines from a directory already there: ctranslate2 and sentencepiece serve it alone."""
  from evaluation.ctranslate2_modes import serves_without_tensorflow
  return not serves_without_tensorflow(config)


def run_mode(config: Config) -> None:
  if config.mode not in _MODES:
    raise UserError(f"--mode={config.mode} is not available in this version; "
                    f"available: {', '.join(sorted(_MODES))}")
  _MODES[config.mode](config)


def print_metrics(metrics: dict) -> None:
  """The contract: the metrics JSON object is the last line of stdout."""
  sys.stdout.write(json.dumps(metrics, sort_keys=True) + "\n")
  sys.stdout.flush()


@register_mode("train")
def train_mode(config: Config) -> None:
  from training.loop import train
  print_metrics(train(config))


def components_for_inference(config: Config):
  """Components restored from WORKDIR's best (else latest) checkpoint, built as trained."""
  from training.components import build_components, restore_for_inference
  from training.workdir import load_config_dict
  load_config_dict(config.workdir)  # clear error when nothing was trained there
  components = build_components(config, inference=True)
  restore_for_inference(components)
  return components


def _read_lines(path: str, what: str):
  """The lines of a user's file, through the data package's one line reader."""
  from data.text_files import read_lines
  return read_lines(path, what, allow_empty=True)


def read_evaluation_files(cfg):
  """(sources, references) of --mode=evaluate's --input_file and --reference_file: UserError
  when the reference file is missing or the line counts differ."""
  if not cfg.reference_file:
    raise UserError("--input_file needs --reference_file in --mode=evaluate")
  sources = _read_lines(cfg.input_file, "--input_file")
  references = _read_lines(cfg.reference_file, "--reference_file")
  if len(sources) != len(references):
    raise UserError(f"--input_file has {len(sources)} lines but --reference_file has "
                    f"{len(references)}")
  return sources, references


@register_mode("evaluate")
def evaluate_mode(config: Config) -> None:
  from evaluation.scorers import score_corpus
  from training.workdir import append_metrics, atomic_write_text
  from evaluation import ctranslate2_modes
  if ctranslate2_modes.uses_ctranslate2(config):
    return print_metrics(ctranslate2_modes.evaluate_mode(config))
  from evaluation import evaluate as ev
  c = components_for_inference(config)
  cfg = config.eval
  if cfg.input_file:
    sources, references = read_evaluation_files(cfg)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    decode_fn = ev.make_decoder(c.model, cfg)
    rows, size = c.bundle.source_rows(sources), cfg.eval_batch_size
    batches = [{"source": tf.constant(ev.pad_rows(rows[i:i + size]))}
               for i in range(0, len(rows), size)]
    hypotheses = ev.translate_batches(decode_fn, batches, c.bundle.target_tokenizer, size)
    metrics = dict(score_corpus(hypotheses, references), input_file=cfg.input_file)
  else:
    metrics = ev.evaluate_split(c, cfg, cfg.split)
    hypotheses = metrics.pop("hypotheses")
  out_path = cfg.output_file or os.path.join(config.workdir, "evaluate.hyp")
  atomic_write_text(out_path, "\n".join(hypotheses) + "\n")
  metrics.update(kind="evaluate", hypotheses_file=out_path)
  append_metrics(config.workdir, metrics)
  print_metrics(metrics)


@register_mode("translate")
def translate_mode(config: Config) -> None:
  """Translates --input_file (else stdin, read lazily) in token-budget batches; output in input
  order, written window by window (evaluation/evaluate.py translate_stream)."""
  cfg = config.eval
  if cfg.translate_batch_tokens < 0:
    raise UserError(f"--translate_batch_tokens must be >= 0, got {cfg.translate_batch_tokens}")
  from evaluation import ctranslate2_modes
  if ctranslate2_modes.uses_ctranslate2(config):
    return ctranslate2_modes.translate_mode(config)
  if cfg.engine == "auto":  # an export of older weights is not used: say why start-up is slow
    note = ctranslate2_modes.stale_export_note(config, ctranslate2_modes.default_directory(config))
    if note:
      logging.warning("translating with TensorFlow: %s", note)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from evaluation import evaluate as ev
  c = components_for_inference(config)
  lines = (_read_lines(cfg.input_file, "--input_file") if cfg.input_file
           else (line.rstrip("\n") for line in sys.stdin))
  decoder = ev.make_decoder(c.model, cfg)

  def decode(padded):
    source = tf.constant(padded)
    hyps = c.bundle.target_tokenizer.detokenize(decoder(source).numpy())
    if cfg.output_format != "jsonl":
      return hyps
    preds = _head_predictions(c, source)
    return [dict({"translation": hyp}, **{k: v[i] for k, v in preds.items()})
            for i, hyp in enumerate(hyps)]

  out = open(cfg.output_file, "w", encoding="utf-8") if cfg.output_file else sys.stdout
  try:
    for src, result in ev.translate_stream(lines, c.bundle.source_rows, decode,
                                           cfg.translate_batch_tokens, cfg.eval_batch_size):
      if cfg.output_format == "jsonl":
        result = json.dumps(dict({"source": src}, **result), ensure_ascii=False)
      out.write(result + "\n")
      out.flush()
  finally:
    if out is not sys.stdout:
      out.close()


def _head_predictions(c, source) -> dict:
  """Predictions of every head that reads only the encoder, as JSON-ready lists."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from heads.base import call_head, float32_outputs
  encoded = float32_outputs(c.model.encode(source, training=False))
  result = {}
  for head in c.heads:
    if head.head_name == "translation" or not set(head.reads) <= set(encoded):
      continue
    for key, value in call_head(head, head.predict, encoded).items():
      values = tf.convert_to_tensor(value).numpy().tolist()
      names = head.context.label_info.get(key)  # e.g. domain ids -> catalog names
      if isinstance(names, tuple):
        values = [names[v] if 0 <= v < len(names) else None for v in values]
      result[f"{head.head_name}/{key}"] = values
  return result


@register_mode("diagnose")
def diagnose_mode(config: Config) -> None:
  """Gradient diagnosis on a few training batches; exit status 1 when it finds an error."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from training.components import build_components, checkpoint_dir, make_checkpoint
  from training.diagnose import diagnose
  from training.workdir import fresh_workdir_rollback, prepare_workdir
  with fresh_workdir_rollback(config.workdir):
    prepare_workdir(config)
    c = build_components(config)
  latest = tf.train.latest_checkpoint(checkpoint_dir(config.workdir))
  if latest:
    make_checkpoint(c).read(latest).expect_partial()
  batches = iter(c.bundle.train_dataset(config.data.batch_tokens, config.train.seed))
  report = diagnose(c, batches, steps=2)
  print(f"diagnosing {'checkpoint ' + latest if latest else 'the initial weights'}")
  print("\n".join(report.lines()))
  if report.errors:
    sys.exit(1)


@register_mode("export")
def export_mode(config: Config) -> None:
  """SavedModel in --output_file (default WORKDIR/export): strings -> translations + heads.
  --export_format=ctranslate2: a CTranslate2 directory (default WORKDIR/ctranslate2)."""
  from evaluation.export import export
  if config.eval.export_format == "ctranslate2":
    from evaluation import ctranslate2_modes
    return print_metrics(ctranslate2_modes.export_mode(config))
  c = components_for_inference(config)
  path = export(c, config.eval.output_file or os.path.join(config.workdir, "export"))
  print_metrics({"kind": "export", "path": path})


@register_mode("inspect")
def inspect_mode(config: Config) -> None:
  """WORKDIR/inspect/: cross-attention grids (every layer x head) of the first --inspect_lines
  sentences of --input_file (else of --split), their translations and head predictions."""
  from evaluation.inspect import fixed_validation_sentences, run_inspect
  cfg = config.eval
  if cfg.inspect_lines < 1:
    raise UserError(f"--inspect_lines must be >= 1, got {cfg.inspect_lines}")
  lines = _read_lines(cfg.input_file, "--input_file")[:cfg.inspect_lines] if cfg.input_file else []
  c = components_for_inference(config)
  if not cfg.input_file:
    lines = fixed_validation_sentences(c, cfg.inspect_lines, cfg.split)
  if not lines:
    raise UserError(f"no sentences to inspect in {cfg.input_file or '--split=' + cfg.split}")
  out_dir = cfg.output_file or os.path.join(config.workdir, "inspect")
  print_metrics(run_inspect(c, lines, out_dir, _head_predictions))
