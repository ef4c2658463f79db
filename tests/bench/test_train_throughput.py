"""bench/train_throughput.py: it runs, and `--policy` / `--input-size` time the
Trainer's step under that policy and input size too (one tiny run: its figures
mean nothing here)."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_prints_the_variant_line_beside_float32():
  result = subprocess.run(
      [sys.executable, 'bench/train_throughput.py', '--batch', '8', '--steps',
       '1', '--repeats', '1', '--examples', '64', '--policy', 'mixed_bfloat16',
       '--input-size', '40'],
      cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
  output = result.stdout + result.stderr
  assert result.returncode == 0, output[-3000:]
  assert re.search(r'^repeat 1: trainer=\S+ bare=\S+ input=\S+ reference=\S+ '
                   r'variant=\S+$', output, re.M), output[-2000:]
  match = re.search(r'^variant policy=mixed_bfloat16 input_size=40 '
                    r'trainer_img_s=(\S+) ratio_vs_float32_32px=(\S+)$',
                    output, re.M)
  assert match and float(match[1]) > 0 and float(match[2]) > 0, output[-2000:]
