"""bench/beam_speed.py --quick reports its JSON contract (cached == uncached ids are tested in
tests/model/decoding_test.py). No timing thresholds."""
import json

import pytest

from bench import beam_speed


def test_quick_bench_reports_the_contract(capsys):
  assert beam_speed.main(["--quick"]) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert result["identical"] is True
  assert result["output_length"] == 32  # min(32, 2 * 12 + 10): EOS never ends a hypothesis
  assert result["cached_s"] > 0 and result["uncached_s"] > 0
  assert result["ratio"] == pytest.approx(result["uncached_s"] / result["cached_s"], rel=0.02)
