"""What the host can do, read without TensorFlow where possible: CPU flags, native bfloat16, and
the precision `--precision=auto` resolves to."""
import os

_NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_info() -> str:
  """The start of /proc/cpuinfo (its first processor's block), or '' where there is none."""
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      return f.read(8192)
  except OSError:
    return ""


def cpu_flags(info: str) -> set:
  """The x86 `flags` of `info` (empty on other architectures, whose line is `Features`)."""
  line = next((l for l in info.splitlines() if l.startswith("flags")), "")
  return set(line.partition(":")[2].split())


def resolve_precision(precision: str, info: str = None, gpus=None) -> str:
  """--precision=auto: `mixed_bfloat16` where bfloat16 arithmetic is native (x86 CPUs with
  AVX512-BF16 or AMX-BF16, GPUs of compute capability 8.0 and later), `mixed_float16` (with loss
  scaling) on older GPUs, `float32` on every other CPU. Measured on an AVX2-only AMD EPYC host
  (bench/throughput.py, Multi30k shapes): mixed_bfloat16 trained at 220 target tokens/s against
  1,146 in float32, 5.2x slower; on AVX512-BF16 hosts it is ~1.3-1.5x faster (docs/results.md).
  Any other value is returned as it is. `info` / `gpus` ([(name, (major, minor))]) are for
  tests; by default they are read from this host."""
  if precision != "auto":
    return precision
  if gpus is None:
    gpus = _gpus()
  if gpus:
    return "mixed_bfloat16" if min(cc for _, cc in gpus) >= (8, 0) else "mixed_float16"
  flags = cpu_flags(cpu_info() if info is None else info)
  return "mixed_bfloat16" if flags & _NATIVE_BF16_FLAGS else "float32"


def _gpus():
  if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
    return []
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  found = []
  for device in tf.config.list_physical_devices("GPU"):
    details = tf.config.experimental.get_device_details(device)
    found.append((device.name, tuple(details.get("compute_capability") or (0, 0))))
  return found
