"""Every command-line flag, and the single flags -> Config conversion.

Flags are defined in one module per topic so that `--helpfull` groups them. Precedence:
dataclass defaults (the default job) < `--preset` < flags given explicitly on the command line.
"""
import dataclasses

from absl import flags

from configs import presets
from configs.config import Config, DataSourceConfig
from configs.errors import UserError
from flags import data_flags, eval_flags, head_flags, model_flags, run_flags, train_flags  # noqa: F401
from heads.spec import parse_heads_spec

FLAGS = flags.FLAGS

# flag name -> Config section it sets (field name = flag name).
_SECTIONS = {
    "model": ("model", "d_model", "num_layers", "num_heads", "ffn_dim", "dropout",
              "tie_embeddings", "summary", "rnn_cell"),
    "data": ("source_lang", "target_lang", "vocab_size", "joint_vocab", "batch_tokens",
             "max_length", "tokenizer_sample", "data_cache_dir"),
    "train": ("train_steps", "learning_rate", "warmup_steps", "clip_norm", "seed", "deterministic",
              "combiner", "precision", "jit_compile", "on_nonfinite", "checkpoint_every",
              "eval_every", "select_metric", "log_every", "max_minutes", "early_stop_patience",
              "lr_control", "lr_decay", "accum_steps", "distribute",
              "log_grad_stats_every", "schedule", "alternate_ratio", "ema_decay", "init_from"),
    "eval": ("beam_size", "length_penalty", "max_decode_length", "split", "input_file",
             "output_file", "reference_file", "output_format", "eval_batch_size",
             "max_eval_examples", "inspect_lines", "average_last", "translate_batch_tokens", "export_format",
             "quantization", "engine", "ctranslate2_dir"),
}


def _given(name: str) -> bool:
  return FLAGS[name].present > 0


def parse_mix(text: str):
  """'tsv:0.2,parallel_text:0.5:/path' -> tuple of DataSourceConfig."""
  sources = []
  for item in filter(None, (part.strip() for part in text.split(","))):
    name, _, rest = item.partition(":")
    weight_text, _, data_dir = rest.partition(":")
    try:
      weight = float(weight_text)
    except ValueError:
      raise UserError(f"--mix entry {item!r}: expected NAME:WEIGHT[:DATA_DIR] with a numeric "
                      f"weight, got weight {weight_text!r}") from None
    if weight <= 0:
      raise UserError(f"--mix entry {item!r}: weight must be > 0")
    sources.append(DataSourceConfig(name, data_dir, weight))
  return tuple(sources)


def config_from_flags() -> Config:
  """The Config for this command line (preset first, then explicitly given flags)."""
  config = presets.get_preset(FLAGS.preset)() if FLAGS.preset else Config()
  updates = {"mode": FLAGS.mode, "workdir": FLAGS.workdir, "overwrite": FLAGS.overwrite}
  for section, names in _SECTIONS.items():
    given = {n: FLAGS[n].value for n in names if _given(n)}
    if given:
      updates[section] = dataclasses.replace(getattr(config, section), **given)
  data = updates.get("data", config.data)
  sources = list(data.sources)
  if _given("dataset"):
    sources[0] = dataclasses.replace(sources[0], dataset=FLAGS.dataset, data_dir=FLAGS.data_dir)
  elif _given("data_dir"):  # keeps the preset's dataset (e.g. multi30k_transformer)
    sources[0] = dataclasses.replace(sources[0], data_dir=FLAGS.data_dir)
  if _given("mix"):
    sources = sources[:1] + list(parse_mix(FLAGS.mix))
  updates["data"] = dataclasses.replace(data, sources=tuple(sources))
  if _given("heads"):
    updates["heads"] = parse_heads_spec(FLAGS.heads)
  if _given("head_modules"):
    updates["head_modules"] = tuple(FLAGS.head_modules)
  return dataclasses.replace(config, **updates)


def config_from_argv(argv) -> Config:
  """main.py's flags parsed from `argv` (argv[0] is the program) into a Config, for tools that
  take main.py's flags after their own; a bad flag is a UserError."""
  try:
    FLAGS(list(argv))
  except flags.Error as e:
    raise UserError(str(e)) from None
  return config_from_flags()
