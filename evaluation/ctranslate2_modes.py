"""The CTranslate2 side of the modes (training/modes.py dispatches here):
`--mode=export --export_format=ctranslate2`, `--mode=translate|evaluate --engine=ctranslate2`."""
import hashlib
import json
import os
import sys

from absl import logging

from configs.config import Config
from configs.errors import UserError
from evaluation.ctranslate2_export import MANIFEST


def default_directory(config: Config) -> str:
  return config.eval.ctranslate2_dir or os.path.join(config.workdir, "ctranslate2")


def export(config: Config, directory: str, components=None) -> str:
  """Exports WORKDIR's inference weights (best/latest/averaged/EMA, as every mode restores
  them) to `directory`; the configuration is checked before anything is built."""
  from evaluation.ctranslate2_export import check_exportable, export_ctranslate2
  from training.modes import components_for_inference
  check_exportable(config)
  weights = weights_fingerprint(config)  # before restoring: the state the export is made from
  c = components if components is not None else components_for_inference(config)
  return export_ctranslate2(c, directory, checkpoint=f"step {int(c.step.numpy())}",
                            weights=weights)


def weights_fingerprint(config: Config) -> str:
  """Which weights an inference mode would restore from WORKDIR, read without TensorFlow: the
  checkpoint state files (latest and best; a new checkpoint changes them), --average_last and
  whether EMA weights are used (training/components.py restore_for_inference)."""
  parts = [f"average_last={config.eval.average_last}", f"ema={config.train.ema_decay > 0}"]
  for kind in ("checkpoints", "best"):
    path = os.path.join(config.workdir, kind, "checkpoint")
    if os.path.exists(path):
      with open(path, encoding="utf-8") as f:
        parts.append(f"{kind}:{f.read()}")
  return hashlib.sha1("\n".join(parts).encode("utf-8")).hexdigest()[:16]


def _manifest(directory: str) -> dict:
  path = os.path.join(directory, MANIFEST)
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def export_is_current(config: Config, directory: str) -> bool:
  """Whether `directory` holds the weights an inference mode would restore from WORKDIR now."""
  return _manifest(directory).get("weights") == weights_fingerprint(config)


def export_after_training(components) -> str:
  """After training: WORKDIR/ctranslate2 from the weights just evaluated (best, averaged or
  EMA), so that `--mode=translate` (engine auto) starts without TensorFlow. '' when off or
  when the model has no CTranslate2 spec (RNN)."""
  config = components.config
  if not config.eval.export_after_training or config.model.model != "transformer":
    return ""
  return export(config, os.path.join(config.workdir, "ctranslate2"), components)


def export_mode(config: Config) -> dict:
  directory = config.eval.output_file or os.path.join(config.workdir, "ctranslate2")
  path = export(config, directory)
  return {"kind": "export", "format": "ctranslate2", "path": path,
          "quantization": config.eval.quantization}


def stale_export_note(config: Config, directory: str) -> str:
  """A warning when `directory` (WORKDIR/ctranslate2) holds other weights than WORKDIR's
  checkpoints now give ('' otherwise): it is reused as it is, never re-exported behind the
  user's back."""
  manifest = _manifest(directory)
  if not manifest or manifest.get("weights") == weights_fingerprint(config):
    return ""
  return (f"{directory} holds the weights of {manifest.get('checkpoint') or 'an older export'}, "
          f"not those {config.workdir} gives now (newer checkpoints, or another --average_last "
          "/ --ema_decay): to serve them, export again (--mode=export "
          "--export_format=ctranslate2)")


def uses_ctranslate2(config: Config) -> bool:
  """The engine of translate/evaluate: `ctranslate2` when asked, and under `auto` for
  --mode=translate of plain text when WORKDIR/ctranslate2 (or --ctranslate2_dir) is current;
  TensorFlow otherwise (evaluate's scores stay those of training's own decoder)."""
  cfg = config.eval
  if cfg.engine != "auto":
    return cfg.engine == "ctranslate2"
  return (config.mode == "translate" and cfg.output_format == "text" and
          config.model.model == "transformer" and
          export_is_current(config, default_directory(config)))


def serves_without_tensorflow(config: Config) -> bool:
  """Whether this run translates lines (translate, or evaluate on --input_file) with
  CTranslate2 from a directory that exists: then TensorFlow is never imported."""
  return (uses_ctranslate2(config) and
          (config.mode == "translate" or (config.mode == "evaluate" and
                                          bool(config.eval.input_file))) and
          os.path.isdir(default_directory(config)))


def _engine(config: Config, components=None):
  """The Engine on --ctranslate2_dir (default WORKDIR/ctranslate2), exported first if missing."""
  from evaluation.ctranslate2_engine import Engine
  from evaluation.ctranslate2_export import check_exportable
  check_exportable(config)
  if config.eval.output_format != "text":
    raise UserError("--engine=ctranslate2 writes translations only; head predictions "
                    "(--output_format=jsonl) need --engine=tensorflow or the SavedModel export")
  directory = default_directory(config)
  if not os.path.isdir(directory):
    logging.info("no CTranslate2 model in %s: exporting it first (--quantization=%s)",
                 directory, config.eval.quantization)
    export(config, directory, components)
  elif not config.eval.ctranslate2_dir:
    note = stale_export_note(config, directory)
    if note:
      logging.warning(note)
  return Engine(directory)


def translate_mode(config: Config) -> None:
  """stdin or --input_file -> stdout or --output_file, one translation a line, in order."""
  from evaluation.ctranslate2_engine import translate_lines
  from training.modes import _read_lines
  cfg = config.eval
  engine = _engine(config)
  lines = (_read_lines(cfg.input_file, "--input_file") if cfg.input_file
           else (line.rstrip("\n") for line in sys.stdin))
  total = len(lines) if cfg.input_file else 0
  out = open(cfg.output_file, "w", encoding="utf-8") if cfg.output_file else sys.stdout
  try:
    for _, hyp in translate_lines(engine, lines, cfg, total=total):
      out.write(hyp + "\n")
      out.flush()
  finally:
    if out is not sys.stdout:
      out.close()


def evaluate_split(config: Config, split: str):
  """(hypotheses, references) of `split` translated by CTranslate2; the sources are the id
  rows of the TensorFlow evaluation pipeline, so both engines read the same pieces."""
  from training.modes import components_for_inference
  c = components_for_inference(config)
  engine = _engine(config, c)
  cfg = config.eval
  dataset = c.bundle.eval_dataset(split, cfg.eval_batch_size, cfg.max_eval_examples)
  sources, references = [], []
  for batch in dataset:
    sources += engine.pieces_of_ids(batch["source"].numpy())
    references += [t.decode("utf-8") for t in batch["target_text"].numpy()]
  hypotheses = engine.translate(sources, cfg.beam_size, cfg.length_penalty,
                                cfg.max_decode_length, cfg.eval_batch_size)
  return hypotheses, references


def evaluate_lines(config: Config, sources):
  """Translations of raw `sources` lines by CTranslate2."""
  engine = _engine(config)
  cfg = config.eval
  return engine.translate(engine.encode(sources), cfg.beam_size, cfg.length_penalty,
                          cfg.max_decode_length, cfg.eval_batch_size)


def evaluate_mode(config: Config) -> dict:
  """BLEU/chrF/TER of CTranslate2's translations of --split (or --input_file against
  --reference_file); the hypotheses go to --output_file (default WORKDIR/evaluate.hyp)."""
  from evaluation.scorers import score_corpus
  from training.modes import read_evaluation_files
  from training.workdir import append_metrics, atomic_write_text
  cfg = config.eval
  if cfg.input_file:
    sources, references = read_evaluation_files(cfg)
    hypotheses = evaluate_lines(config, sources)
    metrics = dict(score_corpus(hypotheses, references), input_file=cfg.input_file)
  else:
    hypotheses, references = evaluate_split(config, cfg.split)
    metrics = dict(score_corpus(hypotheses, references), split=cfg.split,
                   examples=len(hypotheses))
  out_path = cfg.output_file or os.path.join(config.workdir, "evaluate.hyp")
  atomic_write_text(out_path, "\n".join(hypotheses) + "\n")
  metrics.update(kind="evaluate", engine="ctranslate2", hypotheses_file=out_path,
                 ctranslate2_dir=default_directory(config))
  append_metrics(config.workdir, metrics)
  return metrics
