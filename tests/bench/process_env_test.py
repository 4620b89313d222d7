"""bench/process_env.py: its settings, the rotation of the order and the ratios (numbers by
hand). The children (bench/throughput.py) are tested in throughput_test.py."""
import pytest

from bench import process_env


def test_settings_parse_and_bad_ones_fail_in_one_line():
  assert process_env.parse_settings("default, A_1=x+B=2") == [{}, {"A_1": "x", "B": "2"}]
  assert process_env.label({"B": "2", "A": "1"}) == "A=1+B=2"
  assert process_env.label({}) == "default"
  for bad in ("default", "default,default", "default,A", "default,A=", "default,=1",
              "default,A-B=1", "default,A=1+B=2,B=2+A=1"):
    with pytest.raises(SystemExit, match="^error: --settings"):
      process_env.parse_settings(bad)


def test_every_setting_leads_one_round_in_turn():
  s = ["a", "b", "c"]
  assert process_env.rotated(s, 0) == s
  assert process_env.rotated(s, 1) == ["b", "c", "a"]
  assert process_env.rotated(s, 3) == s


def test_ratios_are_per_round_against_the_first_setting():
  out = process_env.summarize(["default", "X=1"],
                              {"default": [100.0, 200.0], "X=1": [110.0, 240.0]})
  assert out["default"]["ratio_rounds"] == [1.0, 1.0]
  assert out["default"]["ratio_half_width"] == 0.0
  assert out["X=1"]["ratio_rounds"] == pytest.approx([1.1, 1.2])
  assert out["X=1"]["ratio_mean"] == pytest.approx(1.15)
  # two rounds: t(0.975, 1) = 12.706, sd of (1.1, 1.2) = 0.0707107, sem = 0.05
  assert out["X=1"]["ratio_half_width"] == pytest.approx(12.706 * 0.05)
  assert out["X=1"]["tok_s_mean"] == 175.0
