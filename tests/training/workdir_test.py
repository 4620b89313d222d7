"""Workdir guard: incompatible reruns refused, compatible ones allowed, --overwrite clears; atomic writes."""
import dataclasses
import json
import os

import pytest

from configs.config import (Config, DataConfig, DataSourceConfig, EvalConfig, HeadSpec,
                            ModelConfig, TrainConfig)
from configs.errors import UserError
from training import workdir as wd


def test_incompatible_rerun_refused_and_compatible_allowed(tmp_path):
  config = Config(workdir=str(tmp_path / "w"))
  wd.prepare_workdir(config)
  saved = json.loads((tmp_path / "w" / "config.json").read_text())
  assert saved["model"]["d_model"] == 128
  more_steps = dataclasses.replace(config, train=TrainConfig(train_steps=99))
  wd.prepare_workdir(more_steps)  # compatible: resumes
  bigger = dataclasses.replace(config, model=ModelConfig(d_model=512))
  with pytest.raises(UserError, match="different model config.*--overwrite"):
    wd.prepare_workdir(bigger)
  (tmp_path / "w" / "checkpoints").mkdir()
  wd.prepare_workdir(dataclasses.replace(bigger, overwrite=True))
  assert not (tmp_path / "w" / "checkpoints").exists()
  assert json.loads((tmp_path / "w" / "config.json").read_text())["model"]["d_model"] == 512


def test_unwritable_workdir_is_a_user_error(tmp_path):
  blocker = tmp_path / "file"
  blocker.write_text("x")
  with pytest.raises(UserError, match="not writable"):
    wd.prepare_workdir(Config(workdir=str(blocker / "sub")))


def test_atomic_write_keeps_previous_file_when_writing_fails(tmp_path, monkeypatch):
  path = tmp_path / "a.json"
  wd.atomic_write_text(str(path), "old")

  def boom(fd):
    raise OSError("disk full")
  monkeypatch.setattr(os, "fsync", boom)
  with pytest.raises(OSError):
    wd.atomic_write_text(str(path), "new")
  assert path.read_text() == "old"
  assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temporary file left behind


def test_workdir_written_before_a_new_field_resumes(tmp_path):
  """config.json of an older auxseq lacks fields added since (here the subword sampling ones):
  at their defaults the run is the same, so the workdir stays compatible; set, it is not."""
  config = Config(workdir=str(tmp_path / "w"))
  wd.prepare_workdir(config)
  path = tmp_path / "w" / "config.json"
  saved = json.loads(path.read_text())
  del saved["data"]["subword_alpha"], saved["data"]["subword_nbest"]
  path.write_text(json.dumps(saved))
  wd.prepare_workdir(config)  # compatible: resumes
  path.write_text(json.dumps(saved))
  sampled = dataclasses.replace(config, data=dataclasses.replace(config.data, subword_alpha=0.2))
  with pytest.raises(UserError, match="different data config"):
    wd.prepare_workdir(sampled)


def test_inference_modes_take_the_trained_model_data_heads_and_ema_from_the_workdir(tmp_path):
  data = DataConfig(sources=(DataSourceConfig("parallel_text", "/data/m30k"),
                             DataSourceConfig("tsv", "/data/listings.tsv", 0.05)),
                    joint_vocab=False, vocab_size=8000)
  trained = Config(workdir=str(tmp_path), model=ModelConfig(d_model=32, num_layers=1), data=data,
                   heads=(HeadSpec("price", (("weight", "0.5"),)),), head_modules=("my_heads",),
                   train=TrainConfig(ema_decay=0.99),
                   eval=EvalConfig(average_last=5, beam_size=5, length_penalty=1.0))
  wd.prepare_workdir(trained)
  flags_config = Config(mode="translate", workdir=str(tmp_path))  # no training flags given
  used = wd.inference_config(flags_config)
  assert used.model == trained.model and used.heads == trained.heads and used.data == data
  assert used.head_modules == ("my_heads",) and used.train.ema_decay == 0.99
  assert used.train.seed == flags_config.train.seed  # the rest of train is this command's
  assert (used.eval.average_last, used.eval.beam_size, used.eval.length_penalty) == (5, 5, 1.0)
  assert used.eval.split == flags_config.eval.split
  beam_given = wd.inference_config(dataclasses.replace(
      flags_config, eval=EvalConfig(beam_size=1)), given={"beam_size"})
  assert (beam_given.eval.beam_size, beam_given.eval.average_last) == (1, 5)
  training_again = dataclasses.replace(flags_config, mode="train")
  assert wd.inference_config(training_again) is training_again
  empty = Config(mode="translate", workdir=str(tmp_path / "nothing"))
  assert wd.inference_config(empty) is empty
