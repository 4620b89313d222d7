"""Flags stay at the edge, and the flags -> Config conversion honours preset < explicit flag."""
import dataclasses
import pathlib
import re

import pytest
from absl import flags as absl_flags

import flags as app_flags
from configs.errors import UserError

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def parse():
  def _parse(*args):
    absl_flags.FLAGS.unparse_flags()
    absl_flags.FLAGS(["main.py", *args])
    return app_flags.config_from_flags()
  yield _parse
  absl_flags.FLAGS.unparse_flags()


def test_only_main_and_flags_import_absl_flags():
  pattern = re.compile(r"^\s*(from absl import .*\bflags\b|import absl\.flags|from absl\.flags)",
                       re.M)
  offenders = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*.py")
               if ".venv" not in p.parts and "tests" not in p.parts
               and p.parts[len(ROOT.parts)] != "flags" and p.name != "main.py"
               and pattern.search(p.read_text(encoding="utf-8"))]
  assert offenders == []


def test_every_flag_has_help_and_default():
  module_flags = {}
  for module in ("run_flags", "data_flags", "model_flags", "train_flags", "eval_flags",
                 "head_flags"):
    for f in absl_flags.FLAGS.get_flags_for_module(f"flags.{module}"):
      module_flags[f.name] = f
  assert len(module_flags) > 40
  for name, f in module_flags.items():
    assert f.help and f.help != "(no help available)", name
    assert f.default is not None, name


def test_defaults_are_the_default_job(parse):
  config = parse()
  assert config.model.model == "transformer"
  assert config.data.sources[0].dataset == "gettext"
  assert (config.data.source_lang, config.data.target_lang) == ("en", "de")


def test_preset_then_explicit_flags_override(parse):
  config = parse("--preset=tiny", "--d_model=48", "--train_steps=7")
  assert config.model.d_model == 48          # explicit flag wins
  assert config.model.num_layers == 1        # from the preset
  assert config.train.train_steps == 7
  assert config.data.vocab_size == 500       # preset value, flag not given


def test_mix_and_dataset(parse, tmp_path):
  config = parse("--dataset=parallel_text", f"--data_dir={tmp_path}", "--mix=tsv:0.25")
  sources = config.data.sources
  assert [(s.dataset, s.data_dir, s.weight) for s in sources] == [
      ("parallel_text", str(tmp_path), 1.0), ("tsv", "", 0.25)]
  with pytest.raises(UserError, match="numeric weight"):
    parse("--mix=tsv:lots")


def test_data_dir_alone_keeps_the_presets_dataset(parse, tmp_path):
  config = parse("--preset=multi30k_transformer", f"--data_dir={tmp_path}")
  assert [(s.dataset, s.data_dir) for s in config.data.sources] == [("parallel_text",
                                                                     str(tmp_path))]


def test_unknown_preset_lists_known(parse):
  with pytest.raises(UserError, match="known presets: .*tiny"):
    parse("--preset=huge")


def test_flag_defaults_equal_config_defaults(parse):
  """`python main.py` and Config() describe the same default job."""
  from configs.config import Config
  assert parse() == dataclasses.replace(Config(), workdir=absl_flags.FLAGS.workdir)


def test_readme_flag_reference_is_current():
  """README.md's flag tables are exactly what tools/flags_table.py generates now."""
  from flags import reference
  assert reference.table().rstrip() in (ROOT / "README.md").read_text(encoding="utf-8"), \
      "run: python tools/flags_table.py --write"


def test_long_preset_can_continue_a_finished_run(parse, tmp_path):
  """multi30k_transformer_long differs only in --max_minutes, so the workdir guard accepts a
  multi30k_transformer run's workdir and the longer run resumes it (its linear_time schedule
  then decays again to the new deadline: tests/training/schedules_test.py)."""
  from training.workdir import prepare_workdir
  workdir, data = str(tmp_path / "run"), f"--data_dir={tmp_path}"
  short = parse("--preset=multi30k_transformer", f"--workdir={workdir}", data)
  long = parse("--preset=multi30k_transformer_long", f"--workdir={workdir}", data)
  assert dataclasses.replace(long, train=short.train) == short
  assert dataclasses.replace(long.train, max_minutes=60.0) == short.train
  assert (long.train.lr_schedule, long.train.max_minutes) == ("linear_time", 100.0)
  prepare_workdir(short)
  prepare_workdir(long)  # raises UserError if the guard saw a different model/data config
  rnn = parse("--preset=multi30k_rnn", f"--workdir={workdir}", data)
  with pytest.raises(UserError, match="different (data, )?model"):
    prepare_workdir(rnn)


def test_multi30k_small_is_the_measured_command(parse, tmp_path):
  """The preset equals the flags of the run measured in docs/results.md (issue 22)."""
  data = f"--data_dir={tmp_path}"
  preset = parse("--preset=multi30k_small", data)
  flags = parse("--preset=multi30k_transformer", data, "--d_model=128", "--num_layers=4",
                "--ffn_dim=256", "--num_heads=4", "--dropout=0.3", "--learning_rate=5e-3",
                "--warmup_steps=2000", "--batch_tokens=4096", "--checkpoint_every=200",
                "--average_last=5", "--max_minutes=60", "--beam_size=5", "--length_penalty=1.0",
                "--subword_alpha=0", "--keep_checkpoints=5", "--lr_schedule=inverse_sqrt",
                "--train_steps=100000")
  assert preset == flags


def test_multi30k_transformer_is_the_measured_command(parse, tmp_path):
  """The preset equals the flags of the run chosen on validation in docs/results.md (issue 22,
  2026-12-05): the earlier recipe (`_multi30k`, which multi30k_small and multi30k_rnn start from)
  plus sampling, dropout 0.2, the linear schedule to 0 at the 60-minute deadline (at most
  100,000 steps) and 5 checkpoints averaged."""
  data = f"--data_dir={tmp_path}"
  preset = parse("--preset=multi30k_transformer", data)
  flags = parse("--preset=multi30k_rnn", data, "--model=transformer", "--num_layers=3",
                "--num_heads=4", "--ffn_dim=1024", "--dropout=0.2", "--subword_alpha=0.5",
                "--lr_schedule=linear_time", "--train_steps=100000", "--max_minutes=60",
                "--keep_checkpoints=10", "--average_last=5", "--length_penalty=1.0")
  assert preset == flags
  assert (preset.data.subword_nbest, preset.eval.beam_size) == (-1, 4)


def test_multi30k_transformer_heads_is_the_translation_preset_plus_heads(parse, tmp_path):
  """The preset is multi30k_transformer (its linear schedule to the 60-minute deadline, dropout
  0.2, 5 averaged) with listings as 5% of the stream and the two heads at their defaults
  (attention_entropy at 0.003, folded with the cap by default): the issue-22 heads run in
  docs/results.md, whose schedule then ended at step 6,600; --nofold_regularisers turns its fold
  off."""
  data = f"--data_dir={tmp_path}"
  preset = parse("--preset=multi30k_transformer_heads", data)
  flags = parse("--preset=multi30k_transformer", data, "--mix=tsv:0.05",
                "--heads=price;attention_entropy", "--fold_regularisers",
                "--fold_refresh_every=10")
  assert preset == flags
  assert (preset.model.dropout, preset.train.lr_schedule, preset.train.train_steps,
          preset.eval.average_last) == (0.2, "linear_time", 100000, 5)
  from heads.attention_entropy import EntropyOptions  # pylint: disable=import-outside-toplevel
  assert EntropyOptions().weight == 0.003  # the measured run gave this weight explicitly
  assert not parse("--preset=multi30k_transformer_heads", data,
                   "--nofold_regularisers").train.fold_regularisers
