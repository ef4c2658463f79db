"""Images whose header declares too many pixels are refused before decoding.

Run by pytest. `image_header` (pure Python, used by `predict`) and
`transform.decode_images` (the graph every exported model serves) must agree
on each format's declared size and refuse the same images; the bomb is also
decoded in a child process whose peak memory is measured. Also the helpers
that build hostile headers for tests/pipeline/test_predict_limits.py.
"""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image

from components import image_header
from tests.conftest import run_bounded

pytestmark = pytest.mark.timeout(120)


def encoded(fmt: str, size=(50, 33), **kwargs) -> bytes:
  out = io.BytesIO()
  Image.new('RGB', size, (200, 10, 10)).save(out, format=fmt, **kwargs)
  return out.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
  return (struct.pack('>I', len(body)) + kind + body +
          struct.pack('>I', zlib.crc32(kind + body)))


def png_bomb(width: int, height: int, rows: int | None = None) -> bytes:
  """A PNG declaring width x height RGB pixels; `rows` of zeros (all if None),
  compressed at level 9: 20000x20000 takes about 1.2 MB."""
  pack = zlib.compressobj(9)
  row = bytes(1 + 3 * width)
  data = b''.join(pack.compress(row) for _ in range(
      height if rows is None else rows)) + pack.flush()
  return (b'\x89PNG\r\n\x1a\n' + _chunk(b'IHDR', struct.pack(
      '>IIBBBBB', width, height, 8, 2, 0, 0, 0)) + _chunk(b'IDAT', data) +
          _chunk(b'IEND', b''))


def jpeg_declaring(width: int, height: int) -> bytes:
  data = bytearray(encoded('JPEG'))
  sof = data.index(b'\xff\xc0')
  data[sof + 5:sof + 9] = struct.pack('>HH', height, width)
  return bytes(data)


def gif_declaring(width: int, height: int) -> bytes:
  data = bytearray(encoded('GIF'))
  data[6:10] = struct.pack('<HH', width, height)
  return bytes(data)


def bmp_declaring(width: int, height: int) -> bytes:
  data = bytearray(encoded('BMP'))
  data[18:26] = struct.pack('<ii', width, height)
  return bytes(data)


def animated_gif(frames: int, side: int = 200) -> bytes:
  images = [Image.new('P', (side, side), i % 2) for i in range(frames)]
  out = io.BytesIO()
  images[0].save(out, format='GIF', save_all=True, append_images=images[1:],
                 optimize=False, disposal=2)
  return out.getvalue()


HOSTILE = {
    'png 20000x20000': png_bomb(20000, 20000, rows=10),
    'png 4097x1': png_bomb(4097, 1),
    'png 1x4097': png_bomb(1, 4097),
    'png 4294967295 wide': png_bomb(1, 1)[:16] + struct.pack('>II', 2 ** 32 - 1, 1),
    'jpeg 60000x60000': jpeg_declaring(60000, 60000),
    'jpeg 5000x10': jpeg_declaring(5000, 10),
    'gif 65535x65535': gif_declaring(65535, 65535),
    'gif 200x200, 500 frames': animated_gif(500),
    'bmp 20000x20000': bmp_declaring(20000, 20000),
    'bmp top-down -20000': bmp_declaring(100, -20000),
    'bmp int32 min': bmp_declaring(-2 ** 31, 1),
}


def test_python_reads_each_format_and_refuses_the_hostile_ones():
  for fmt in ('PNG', 'JPEG', 'GIF', 'BMP'):
    kind, width, height, _ = image_header.declared_size(encoded(fmt))
    assert (kind, width, height) == (fmt, 50, 33)
    image_header.check(encoded(fmt))
  progressive = encoded('JPEG', progressive=True)
  assert image_header.declared_size(progressive)[1:3] == (50, 33)
  for name, data in HOSTILE.items():
    with pytest.raises(ValueError, match='header declares .* more than the '
                       '4096x4096'):
      image_header.check(data)
  for cut in (b'\x89PNG\r\n\x1a\n', b'GIF89a\x01', b'BM', b'\xff\xd8\xff\xe0'):
    with pytest.raises(ValueError, match='cut short or garbled'):
      image_header.check(cut)
  image_header.check(b'not an image')  # left to the decoder to refuse


def test_the_serving_graph_refuses_them_before_decoding():
  tf = pytest.importorskip('tensorflow')
  from components import transform
  for fmt in ('PNG', 'JPEG', 'GIF', 'BMP'):
    assert transform.decode_images(tf.constant([encoded(fmt)])).shape == (
        1, 32, 32, 3)
  # The batch's PNG/GIF/BMP headers are read at once, each as Python reads it
  # (a JPEG's, per image by tf.image.extract_jpeg_shape: refused below).
  names = [name for name in HOSTILE if not name.startswith('jpeg')]
  got = transform._declared_size(tf.constant([HOSTILE[n] for n in names]))
  for i, name in enumerate(names):
    want = image_header.declared_size(HOSTILE[name])
    assert [int(v[i]) for v in got] == list(want[1:]), name
  for name, data in HOSTILE.items():
    start = time.monotonic()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match='header declares more than 4096x4096'):
      transform.decode_images(tf.constant([encoded('PNG'), data]))
    assert time.monotonic() - start < 5, name
  with pytest.raises(tf.errors.InvalidArgumentError, match='Unknown image'):
    transform.decode_images(tf.constant([b'not an image']))


def test_a_decompression_bomb_stays_within_memory(tmp_path):
  bomb = tmp_path / 'bomb.png'
  bomb.write_bytes(png_bomb(20000, 20000))  # 1.2 GB of pixels, 4.8 as floats
  assert bomb.stat().st_size < 3 << 20
  done = run_bounded(
      'import tensorflow as tf\n'
      'from components import transform\n'
      'small = tf.io.encode_png(tf.zeros([32, 32, 3], tf.uint8))\n'
      'transform.decode_images(tf.reshape(small, [1]))\n'
      'base = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])\n'
      f'data = open({str(bomb)!r}, "rb").read()\n'
      'try:\n'
      '  transform.decode_images(tf.constant([data]))\n'
      'except tf.errors.InvalidArgumentError as e:\n'
      '  print("refused", "header declares" in e.message)\n'
      'peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])\n'
      'print("grew", (peak - base) // 1024, "MB")\n',
      memory_mb=8192, timeout=110)
  assert done.returncode == 0, done.stderr[-2000:]
  lines = done.stdout.splitlines()
  assert lines[0] == 'refused True'
  assert int(lines[1].split()[1]) < 100, lines  # MB of resident memory added
