"""bench/throughput.py in --quick mode, in-process: the JSON contract and that the reference
trains. No timing thresholds (timings on a shared CPU are noise); only signs and finiteness."""
import json
import math

import numpy as np

from bench import flops, lengths, throughput

REQUIRED = ("reference_tok_s", "reference_bf16_tok_s", "ratio_fp32", "ratio_bf16",
            "reference_bf16_ceiling_fraction", "auxseq_fp32_tok_s", "auxseq_bf16_tok_s", "ratio",
            "reference_step_ms", "auxseq_fp32_step_ms", "auxseq_bf16_step_ms",
            "matmul_gflops_fp32", "matmul_gflops_bf16", "matmul_gflops_model_fp32",
            "matmul_gflops_model_bf16", "reference_ceiling_fraction",
            "auxseq_fp32_ceiling_fraction", "auxseq_bf16_ceiling_fraction",
            "head_overhead_ratio", "heads_base_step_ms", "heads_all_step_ms", "pipeline_tok_s",
            "pipeline_over_training", "peak_rss_mb")


def test_quick_run_reports_every_number_and_the_reference_trains(tmp_path, capsys):
  argv = ["--quick", "--steps=2", "--rounds=1", "--warmup_steps=1",
          f"--data_dir={tmp_path / 'absent'}", f"--workdir={tmp_path / 'work'}"]
  assert throughput.main(argv) == 0
  last_line = capsys.readouterr().out.strip().splitlines()[-1]
  result = json.loads(last_line)
  for key in REQUIRED:
    assert isinstance(result[key], float) and math.isfinite(result[key]) and result[key] > 0, key
  assert result["auxseq_fp32_minflt_per_step"] >= 0  # a count: none is possible
  assert result["lengths_origin"] == "fallback" and "FALLBACK" in result["data"]
  assert result["reference_loss"]["end"] < result["reference_loss"]["start"]
  assert result["heads_same_batches"] is True  # same stream: the overhead ratio compares like
  assert result["ratio"] == max(result["auxseq_fp32_tok_s"],
                                result["auxseq_bf16_tok_s"]) / result["reference_tok_s"]
  assert result["ratio_bf16"] == result["auxseq_bf16_tok_s"] / result["reference_bf16_tok_s"]
  assert result["reference_bf16_loss"]["end"] < result["reference_bf16_loss"]["start"]


def test_bf16_reference_runs_its_matmuls_in_bfloat16():
  """The same-precision reference really is mixed: bfloat16 kernels, float32 logits."""
  from bench import keras_reference  # pylint: disable=import-outside-toplevel
  model = keras_reference.build_reference_model(vocab_size=50, d_model=16, num_layers=1,
                                                num_heads=2, ffn_dim=32, precision="mixed_bfloat16")
  dense = [layer for layer in model._flatten_layers() if layer.__class__.__name__ == "Dense"]
  assert {layer.compute_dtype for layer in dense[:-1]} == {"bfloat16"}
  assert dense[-1].compute_dtype == "float32" and model.output.dtype == "float32"


def test_only_reference_needs_no_auxseq_part(tmp_path):
  result = throughput.run(["--quick", "--only=reference", "--steps=2", "--rounds=1",
                           "--warmup_steps=1", f"--data_dir={tmp_path / 'absent'}"])
  assert result["parts"] == ["reference"] and result["reference_tok_s"] > 0
  assert "auxseq_fp32_tok_s" not in result and "ratio" not in result


def test_forward_flops_match_a_hand_count():
  """One pair, s = 2, t = 3, d = 4, f = 8, one layer, V = 10 (module docstring formula)."""
  s, t, d, f, v = 2, 3, 4, 8, 10
  encoder = 8 * d * d * s + 4 * s * s * d + 4 * d * f * s                    # 256+64+256
  decoder = (8 * d * d * t + 4 * t * t * d + 4 * d * d * t + 4 * d * d * s
             + 4 * t * s * d + 4 * d * f * t)                                  # 384+144+192+128+96+384
  assert encoder + decoder + 2 * d * v * t == 2144
  got = flops.forward_flops([s], [t], d_model=d, num_layers=1, ffn_dim=f, vocab_size=v)
  assert got == 2144
  assert flops.train_flops([s], [t], d_model=d, num_layers=1, ffn_dim=f, vocab_size=v) == 6432


def test_fixed_batch_size_is_a_fixed_point():
  """All targets 10 tokens long: padded length 10, so B = 2048 // 10 = 204."""
  same = lengths.Lengths(np.full(50, 9), np.full(50, 10), "test")
  assert lengths.fixed_batch_size(same, 2048) == (204, 10.0)


def test_expand_parts_aliases_and_errors():
  assert throughput.expand_parts("auxseq,matmul") == ("auxseq_fp32", "auxseq_bf16", "matmul")
  try:
    throughput.expand_parts("nope")
  except ValueError as e:
    assert "nope" in str(e) and "reference" in str(e)
  else:
    raise AssertionError("unknown part accepted")
