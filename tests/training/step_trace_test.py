"""The train step runs one shape-generic graph from its first call.

A graph traced for one batch's exact shapes rounds differently from the shape-generic one on
some CPUs (oneDNN picks kernels by shape): when a resumed run's first step ran the former and the
uninterrupted run the latter, resuming was no longer bit-identical (CI on an AVX512 host,
tests/cli/resume_test.py). So the step must trace once, generic, whatever shapes come.
"""
from tests_support import mixed_batches, term_components, traces_per_graph
from training.step import make_train_step


def batches_of_distinct_shapes(c, n):
  """The first `n` mixed batches whose source shapes differ from each other."""
  batches, shapes = [], set()
  for batch in mixed_batches(c):
    if batch["source"].shape not in shapes:
      shapes.add(batch["source"].shape)
      batches.append(batch)
    if len(batches) == n:
      return batches
  raise AssertionError(f"the stream should give {n} batch shapes in 100 batches")


def test_step_traces_once_over_batches_of_different_shapes(tmp_path, copy_corpus):
  c = term_components(tmp_path, copy_corpus)
  batches = batches_of_distinct_shapes(c, 3)
  step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
  for batch in batches:
    assert bool(step(batch)["finite"])
  assert traces_per_graph(step) == [1]
  assert int(c.optimizer.iterations.numpy()) == 3


def test_folded_step_traces_each_of_its_two_graphs_once(tmp_path, copy_corpus):
  """With a regulariser folded (the default), the refresh step (every 2nd here) and the folded
  step are two graphs; each is traced once, generic, whatever shapes reach it."""
  c = term_components(tmp_path, copy_corpus, heads="price:dropout=0;attention_entropy",
                      fold_refresh_every=2)
  batches = batches_of_distinct_shapes(c, 4)
  step = make_train_step(c.model, c.heads, c.combiner, c.optimizer)
  for batch in batches:  # steps 0 and 2 refresh, 1 and 3 fold: two shapes through each graph
    assert bool(step(batch)["finite"])
  assert traces_per_graph(step) == [1, 1]
