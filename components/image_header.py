"""The pixel size an encoded image declares, read from its header alone.

A leaf module. Called by `cifar10-tfx predict` (`pipeline/commands/predict.py`)
before an image reaches the model; `components.transform.decode_images`
reads the same fields with TensorFlow ops inside the exported graph, so TF
Serving is protected too. Formats are recognised as `tf.io.decode_image`
does (by their first bytes): PNG (IHDR), JPEG (the first SOFn marker), GIF
(the logical screen, times an upper bound on its frames: every frame after
the first starts with the bytes 00 2C) and BMP (the info header, as int32).
An image is refused when either side is above `MAX_IMAGE_SIDE` or its
frames hold more than `MAX_IMAGE_SIDE` squared pixels in all.
"""

from __future__ import annotations

import struct

MAX_IMAGE_SIDE = 4096  # px; a larger image is refused before it is decoded
MAX_PIXELS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE
JPEG_START = b'\xff\xd8\xff'  # SOI and the first marker's 0xFF
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
        0xCF}


def declared_size(data: bytes) -> tuple[str, int, int, int] | None:
  """(format, width, height, frames at most) from the header; None for bytes
  that are no PNG/JPEG/GIF/BMP, ValueError for a header cut short."""
  try:
    if data[:3] == b'\x89PN':
      width, height = struct.unpack('>II', data[16:24])
      return 'PNG', width, height, 1
    if data[:3] == b'GIF':
      width, height = struct.unpack('<HH', data[6:10])
      return 'GIF', width, height, data.count(b'\x00\x2c') + 1
    if data[:2] == b'BM':
      width, height = struct.unpack('<ii', data[18:26])
      return 'BMP', abs(width), abs(height), 1
    if data[:3] == JPEG_START:
      width, height = _jpeg_size(data)
      return 'JPEG', width, height, 1
  except (struct.error, IndexError):
    raise ValueError('its header is cut short or garbled') from None
  return None


def check(data: bytes) -> None:
  """ValueError saying why, if the header declares too many pixels."""
  found = declared_size(data)
  if found is None:
    return
  kind, width, height, frames = found
  if (width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE
      or width * height * frames > MAX_PIXELS):
    many = f' in up to {frames} frames' if frames > 1 else ''
    raise ValueError(f'its {kind} header declares {width}x{height} pixels'
                     f'{many}, more than the {MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE} '
                     'the model accepts: shrink it first')


def _jpeg_size(data: bytes) -> tuple[int, int]:
  at = 2
  while True:
    while data[at] != 0xFF:  # IndexError at the end: no SOFn
      at += 1
    while data[at] == 0xFF:
      at += 1
    marker = data[at]
    at += 1
    if marker in _SOF:
      height, width = struct.unpack('>HH', data[at + 3:at + 7])
      return width, height
    if marker == 0xDA:
      raise struct.error('no SOFn before the scan')
    if marker not in (0x01, *range(0xD0, 0xD9)):  # markers with a length
      at += struct.unpack('>H', data[at:at + 2])[0]
