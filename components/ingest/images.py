"""One source image in, the encoded 32x32 RGB image every example carries out.

Called by `components.ingest.pickles` and `components.ingest.trees` for each
image they read, and by `sources.read_splits`, which logs what was converted.
The rules, also in the README:

- rejected (DataError naming the file): bytes that do not decode (unknown
  format, truncated file), any size other than 32x32, and 16-bit or
  floating-point images (modes I, I;16, F), whose values 8-bit RGB cannot hold;
- kept as they are: a PNG or JPEG file that decodes, whole, to 8-bit RGB
  32x32 (the shared CIFAR-10 JPEGs: ~330 bytes each, where a PNG re-encoding
  took ~3 KB and most of ExampleGen's time);
- converted to RGB, re-encoded as PNG and counted: grayscale (L, LA, 1),
  palette (P, PA), RGBA (the alpha channel is dropped), CMYK and YCbCr.
  Pickled batches (pixel arrays) are encoded as PNG.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from components.ingest.errors import DataError
from components.cifar10 import IMAGE_SIZE
from components.jpeg_pixels import rgb_pixels

IMAGE_EXTS = ('.png', '.jpg', '.jpeg')
CONVERTED_MODES = {'L': 'grayscale', 'LA': 'grayscale', '1': 'grayscale',
                   'P': 'palette', 'PA': 'palette', 'RGBA': 'RGBA',
                   'RGBa': 'RGBA', 'RGBX': 'RGBA', 'CMYK': 'CMYK',
                   'YCbCr': 'YCbCr'}


class Conversions:
  """Counts the images converted to RGB, per kind, with the first of each."""

  def __init__(self):
    self.counts: dict[str, int] = {}
    self.first: dict[str, str] = {}

  def add(self, kind: str, where: str) -> None:
    self.counts[kind] = self.counts.get(kind, 0) + 1
    self.first.setdefault(kind, where)

  def describe(self, split: str, total: int) -> str | None:
    """'train: converted 3 of 80 images to RGB (...)', or None if none was."""
    if not self.counts:
      return None
    kinds = '; '.join(f'{kind} {n}, e.g. {self.first[kind]}'
                      for kind, n in sorted(self.counts.items()))
    alpha = ' (alpha dropped)' if 'RGBA' in self.counts else ''
    return (f'{split}: converted {sum(self.counts.values())} of {total} images '
            f'to RGB{alpha}: {kinds}.')


KEPT_FORMATS = ('PNG', 'JPEG')  # what every reader (PIL, tf.io.decode_image) decodes


def encoded_image(image: Image.Image | bytes, where: str,
                  conversions: Conversions | None = None) -> bytes:
  """The encoded bytes of a 32x32 RGB image: a file's own bytes when they
  already are an 8-bit RGB PNG or JPEG, else PNG; raises DataError naming
  `where`."""
  if isinstance(image, bytes) and rgb_pixels(image, IMAGE_SIZE) is not None:
    return image  # a colour 32x32 JPEG that decodes whole: PIL's verdict too
  try:
    if isinstance(image, bytes):
      with Image.open(io.BytesIO(image)) as opened:
        if opened.size != (IMAGE_SIZE, IMAGE_SIZE):
          w, h = opened.size
          raise DataError(f'{where} is {w}x{h} pixels, not {IMAGE_SIZE}x'
                          f'{IMAGE_SIZE}: remove it or resize it.')
        opened.load()  # a truncated file fails here
        if opened.mode == 'RGB' and opened.format in KEPT_FORMATS:
          return image
        image = _rgb(opened, where, conversions)
    out = io.BytesIO()
    image.save(out, format='PNG')
    return out.getvalue()
  except DataError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    why = 'unknown format' if isinstance(e, UnidentifiedImageError) else (
        'the file is truncated' if 'truncat' in str(e).lower() else e)
    raise DataError(f'{where} does not decode as an image ({why}): remove it '
                    'or fix it.') from None


def _rgb(image: Image.Image, where: str,
         conversions: Conversions | None) -> Image.Image:
  if image.mode == 'RGB':
    return image
  kind = CONVERTED_MODES.get(image.mode)
  if kind is None:
    raise DataError(f'{where} has 16-bit or floating-point pixels (mode '
                    f'{image.mode}): save it as 8-bit RGB.')
  if conversions is not None:
    conversions.add(kind, where)
  return image.convert('RGB')
