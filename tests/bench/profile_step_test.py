"""bench/profile_step.py: the op grouping, and a --quick profile on a tiny corpus."""
import json

from bench import profile_step


def test_ops_are_grouped_by_scope_and_type():
  cases = {
      ("seq2seq_1/encoder_1/layer_0_1/ffn_1/dropout_2_1/stateless_dropout/x",
       "StatelessRandomUniformV2"): "dropout (random bits, masks)",
      ("gradient_tape/seq2seq_1/einsum/Einsum_1", "_MklEinsum"):
          "output projection (tied embedding, logits)",
      ("gradient_tape/seq2seq_1/decoder_1/layer_1_1/ffn_1/inner_1/Tensordot/MatMul",
       "_MklMatMul"): "feed-forward matmuls",
      ("seq2seq_1/decoder_1/layer_0_1/query_3/Tensordot/MatMul", "_MklMatMul"):
          "attention projections (q, k, v, o)",
      ("Iterator::Root::Prefetch::GroupByWindow", "Dataset"): "input pipeline (tf.data threads)",
      ("gradient_tape/UnsortedSegmentSum", "UnsortedSegmentSum"):
          "loss (softmax cross-entropy over the vocabulary)",
      ("seq2seq_1/encoder_1/layer_0_1/norm1_1/moments/mean", "Mean"): "layer norm",
      ("something/else", "Tile"): "other (Tile)",
  }
  for (name, op_type), category in cases.items():
    assert profile_step.categorize(name, op_type) == category, name


def test_group_sums_per_step():
  stats = [("a/ffn/MatMul", "_MklMatMul", 3000.0), ("b/ffn/MatMul", "_MklMatMul", 1000.0),
           ("x/norm1/mean", "Mean", 2000.0)]
  categories, busy = profile_step.group(stats, steps=2)
  assert categories == {"feed-forward matmuls": 2.0, "layer norm": 1.0} and busy == 3.0


def test_quick_profile_of_a_tiny_corpus(tmp_path, capsys):
  data = tmp_path / "data"
  data.mkdir()
  words = "the a small big red dog cat sees runs house garden".split()
  for split, n in (("train", 300), ("val", 20), ("test2016", 20)):
    rows = [" ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 6)) for i in range(n)]
    (data / f"{split}.en").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (data / f"{split}.de").write_text("\n".join(r.upper() for r in rows) + "\n", encoding="utf-8")
  argv = ["--quick", "--steps=2", "--warmup_steps=2", f"--data_dir={data}",
          f"--workdir={tmp_path / 'work'}"]
  assert profile_step.main(argv) == 0
  result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  categories = result["categories_ms_per_step"]
  assert result["busy_cpu_ms_per_step"] > 0 and result["step_ms"] > 0
  assert abs(sum(categories.values()) - result["busy_cpu_ms_per_step"]) < 0.5
  assert categories.get("feed-forward matmuls", 0) > 0  # the trace saw the model's ops
