"""bench/result_files.py: the done-marker files of the resumable benches."""
import os

from bench import result_files


def test_run_rows_skips_done_runs_and_loads_them_back(tmp_path, capsys):
  path_of = lambda row, seed: str(tmp_path / row / f"seed{seed}.json")  # noqa: E731
  result_files.write_json(path_of("a", 1), {"row": "a", "seed": 1})  # done before
  ran = []

  def run_one(row, seed):
    ran.append((row, seed))
    result = {"row": row, "seed": seed}
    result_files.write_json(path_of(row, seed), result)
    return result

  code = result_files.run_rows("", ["a", "b"], range(1, 3), path_of, run_one,
                               lambda r: f"ran {r['row']}")
  assert code == 0 and ran == [("b", 1), ("a", 2), ("b", 2)]  # seed-major, "a" seed 1 skipped
  assert "b seed 1: ran b" in capsys.readouterr().err
  loaded = result_files.load_results(["a", "b", "c"], 2, path_of)
  assert {r: [x["seed"] for x in v] for r, v in loaded.items()} == {"a": [1, 2], "b": [1, 2]}
  assert not [f for f in os.listdir(tmp_path / "a") if f.endswith(".tmp")]


def test_unknown_row_is_one_error_line_and_nothing_runs(tmp_path, capsys):
  code = result_files.run_rows("a;zz", ["a"], [1], lambda r, s: str(tmp_path / r),
                               lambda r, s: 1 / 0, str)
  err = capsys.readouterr().err.strip()
  assert code == 2 and err == "error: unknown rows ['zz']; known: a"


def test_run_precision_is_the_configs_with_auto_resolved_for_this_host(tmp_path, monkeypatch):
  from training import hardware  # pylint: disable=import-outside-toplevel
  for given, expected in (("float32", "float32"), ("mixed_bfloat16", "mixed_bfloat16")):
    result_files.write_json(str(tmp_path / given / "config.json"), {"train": {"precision": given}})
    assert result_files.run_precision(str(tmp_path / given)) == expected
  monkeypatch.setattr(hardware, "_gpus", lambda: [])
  monkeypatch.setattr(hardware, "cpu_info", lambda: "flags\t: fpu avx2 avx512_bf16\n")
  result_files.write_json(str(tmp_path / "auto" / "config.json"), {"train": {"precision": "auto"}})
  assert result_files.run_precision(str(tmp_path / "auto")) == "mixed_bfloat16"
  monkeypatch.setattr(hardware, "cpu_info", lambda: "flags\t: fpu avx2\n")
  assert result_files.run_precision(str(tmp_path / "auto")) == "float32"
