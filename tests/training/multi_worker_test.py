"""MultiWorkerMirroredStrategy from TF_CONFIG: two local worker processes on loopback ports
train 20 steps together and end with identical weights (each saves its own checkpoint: the
chief into WORKDIR, the other into WORKDIR-worker1)."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests_support import ROOT, tiny_args


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


def test_two_workers_end_with_identical_weights(tmp_path, copy_corpus):
  workers = [f"localhost:{p}" for p in _free_ports(2)]
  workdir = tmp_path / "w"
  args = tiny_args(workdir, copy_corpus, "--distribute=multi_worker", "--train_steps=20",
                   "--checkpoint_every=10", "--max_eval_examples=4")
  procs = []
  for index in range(2):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_CONFIG=json.dumps(
        {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}))
    procs.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "main.py"), *args],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env, cwd=ROOT))
  outputs = [p.communicate(timeout=900) for p in procs]
  for proc, (_, err) in zip(procs, outputs):
    assert proc.returncode == 0, err[-3000:]
  chief = tf.train.load_checkpoint(str(workdir / "checkpoints" / "ckpt-20"))
  other = tf.train.load_checkpoint(str(tmp_path / "w-worker1" / "checkpoints" / "ckpt-20"))
  names = [n for n in chief.get_variable_to_shape_map() if n.startswith(("model/", "head_"))
           and "OPTIMIZER_SLOT" not in n]
  assert len(names) > 10
  for name in names:
    np.testing.assert_array_equal(chief.get_tensor(name), other.get_tensor(name), err_msg=name)
  first = tf.train.load_checkpoint(str(workdir / "checkpoints" / "ckpt-10"))
  assert any(not np.array_equal(first.get_tensor(n), chief.get_tensor(n)) for n in names)
