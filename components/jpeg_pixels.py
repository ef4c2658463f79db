"""The pixels of a colour JPEG as PIL decodes them, about 6x faster.

Called by `components.ingest.images` (every image is decoded
once at ingestion, to reject a file that does not decode whole) and by
`components.image_checks` (the ImageValidator's pixels), on their common case:
a three-component JPEG of the expected size. Anything else (another format or
size, a grayscale or CMYK JPEG, a JPEG libjpeg warns about) returns None and
the caller decodes it with PIL, whose verdicts and messages stand.

simplejpeg calls libjpeg-turbo, the library PIL decodes JPEG with, with
PIL's settings (the accurate integer IDCT, fancy upsampling), so the pixels
are PIL's exactly (tests/components/test_jpeg_pixels.py), which is also what
Transform's graph decodes (`components.transform.decode_images`). A CIFAR-10
JPEG took 16 us against PIL's 104 (open, load, to array; 10,000 images
interleaved: bench/RESULTS.md). The header is read first: nothing larger
than `side` x `side` is decoded.
"""

from __future__ import annotations

import numpy as np
import simplejpeg

from components.image_header import JPEG_START

_COLOUR = ('YCbCr', 'RGB')  # three-component JPEGs: PIL's mode RGB


def rgb_pixels(data: bytes, side: int) -> np.ndarray | None:
  """uint8 [side, side, 3] of a colour JPEG of side x side pixels that decodes
  whole without a warning; None for anything else (the caller's PIL path)."""
  if not data.startswith(JPEG_START):
    return None
  try:
    height, width, colourspace, _ = simplejpeg.decode_jpeg_header(data)
    if (height, width) != (side, side) or colourspace not in _COLOUR:
      return None
    return simplejpeg.decode_jpeg(data, colorspace='RGB', fastdct=False,
                                  fastupsample=False, strict=True)
  except ValueError:  # truncated, corrupt or only warned about: PIL decides
    return None
