"""The fast JPEG path gives PIL's pixels, or leaves the image to PIL."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from components import image_checks
from components.ingest.errors import DataError
from components.ingest.images import encoded_image
from components.jpeg_pixels import rgb_pixels


def _photo(seed: int, side: int = 32) -> np.ndarray:
  """Smooth gradients plus noise: what JPEG's subsampling and IDCT act on."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[:side, :side] / side
  base = np.stack([x, y, (x + y) / 2], -1) * rng.uniform(80, 255, 3)
  return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def _jpeg(pixels: np.ndarray, mode: str = 'RGB', **kwargs) -> bytes:
  out = io.BytesIO()
  Image.fromarray(pixels).convert(mode).save(out, format='JPEG', **kwargs)
  return out.getvalue()


def _pil(data: bytes) -> np.ndarray:
  with Image.open(io.BytesIO(data)) as image:
    return np.asarray(image.convert('RGB'))


@pytest.mark.parametrize('options', [
    {}, {'subsampling': 0}, {'subsampling': 1}, {'progressive': True},
    {'quality': 30}, {'quality': 100}, {'optimize': True}])
def test_colour_jpegs_decode_to_exactly_pils_pixels(options):
  for seed in range(20):
    data = _jpeg(_photo(seed), **options)
    np.testing.assert_array_equal(rgb_pixels(data, 32), _pil(data))


def test_everything_else_is_left_to_pil():
  photo = _photo(0)
  png = io.BytesIO()
  Image.fromarray(photo).save(png, format='PNG')
  whole = _jpeg(photo)
  others = {
      'png': png.getvalue(),
      'grayscale': _jpeg(photo, 'L'),
      'cmyk': _jpeg(photo, 'CMYK'),
      'another size': _jpeg(_photo(0, side=64)),
      'truncated': whole[:len(whole) // 2],
      'garbage after the start': b'\xff\xd8\xff' + bytes(100),
      'empty': b'',
  }
  for name, data in others.items():
    assert rgb_pixels(data, 32) is None, name


def test_a_jpeg_libjpeg_only_warns_about_is_decided_by_pil_as_before():
  photo = _photo(1)
  whole = _jpeg(photo)
  warned = whole[:-2] + b'\x00\x00' + whole[-2:]  # extraneous bytes before EOI
  assert rgb_pixels(warned, 32) is None
  assert encoded_image(warned, 'x.jpg') == warned  # PIL decodes it: kept
  split = image_checks.decode('train', ['x'], [0], [warned])
  assert split.bad == [] and np.array_equal(split.pixels[0], _pil(warned))


def test_ingest_and_image_checks_keep_their_verdicts_on_bad_jpegs():
  whole = _jpeg(_photo(2))
  with pytest.raises(DataError, match='the file is truncated'):
    encoded_image(whole[:len(whole) // 2], 'cut.jpg')
  with pytest.raises(DataError, match='64x64 pixels, not 32x32'):
    encoded_image(_jpeg(_photo(2, side=64)), 'big.jpg')
  split = image_checks.decode('test', ['cut', 'gray', 'ok'], [0, 1, 2], [
      whole[:len(whole) // 2], _jpeg(_photo(2), 'L'), whole])
  assert [i for i, _ in split.bad] == ['cut', 'gray'] and list(split.ok) == [2]
  np.testing.assert_array_equal(split.pixels[0], _pil(whole))
