"""bench/inference_speed.py's comparison of engines (the timed runs themselves are in
docs/results.md): speed-up, BLEU difference and identical lines against TensorFlow."""
from bench.inference_speed import _compare


def test_compare_against_tensorflow_at_the_same_setting():
  summary = {"engines": {
      "tensorflow": [{"beam_size": 4, "length_penalty": 0.6, "sentences_per_second": 20.0,
                      "bleu": 30.0, "identical_lines": ["a", "b", "c"]}],
      "ctranslate2_int8": [{"beam_size": 4, "length_penalty": 0.6, "sentences_per_second": 90.0,
                            "bleu": 29.75, "identical_lines": ["a", "x", "c"]},
                           {"beam_size": 1, "length_penalty": 0.0, "sentences_per_second": 200.0,
                            "bleu": 28.0, "identical_lines": ["a", "b", "c"]}]}}
  _compare(summary)
  int8 = summary["engines"]["ctranslate2_int8"]
  assert int8[0]["speedup_vs_tensorflow"] == 4.5
  assert int8[0]["bleu_minus_tensorflow"] == -0.25
  assert int8[0]["same_lines_as_tensorflow"] == 2
  assert "speedup_vs_tensorflow" not in int8[1]  # no TensorFlow row at beam 1
  assert all("identical_lines" not in row for rows in summary["engines"].values() for row in rows)


def test_compare_also_against_tensorflow_in_float32():
  """CTranslate2 float32 computes in float32: the float32 TensorFlow row is its like-for-like
  reference for BLEU and identical lines; speed-ups stay against the run's precision."""
  def row(speed, bleu, lines):
    return {"beam_size": 4, "length_penalty": 0.6, "sentences_per_second": speed, "bleu": bleu,
            "identical_lines": lines}
  summary = {"engines": {"tensorflow": [row(20.0, 30.0, ["a", "b", "c"])],
                         "tensorflow_float32": [row(25.0, 30.2, ["a", "y", "c"])],
                         "ctranslate2_float32": [row(80.0, 30.25, ["a", "y", "z"])]}}
  _compare(summary)
  tf32 = summary["engines"]["tensorflow_float32"][0]
  ct2 = summary["engines"]["ctranslate2_float32"][0]
  assert tf32["speedup_vs_tensorflow"] == 1.25 and tf32["bleu_minus_tensorflow"] == 0.2
  assert "bleu_minus_tensorflow_float32" not in tf32
  assert ct2["speedup_vs_tensorflow"] == 4.0
  assert ct2["bleu_minus_tensorflow"] == 0.25 and ct2["same_lines_as_tensorflow"] == 1
  assert ct2["bleu_minus_tensorflow_float32"] == 0.05
  assert ct2["same_lines_as_tensorflow_float32"] == 2
  assert "speedup_vs_tensorflow_float32" not in ct2
