"""Image-aware checks of ingested examples: decoding, class balance, duplicates.

Called by `components.image_validation` (the ImageValidator component's
executor) with each split's ids, labels and encoded images; pure numpy and
PIL (and `components.jpeg_pixels` for colour JPEGs), so the tests call it
directly. TFDV sees an image as opaque bytes; these
checks look at the pixels:

- every image decodes to 32x32x3 (a split may hold at most
  `max_undecodable_fraction` of images that do not);
- class balance: in every split, each class count lies within
  `class_balance_tolerance` (a fraction) of the even share n / 10;
- duplicates between the reference splits (train, validation) and the test
  split: exact = identical decoded pixels; near = a 64-bit DCT perceptual hash
  (pHash: grayscale 32x32, 2-D DCT, the 8x8 lowest frequencies, 1 where above
  their median) within `near_duplicate_bits` bits, confirmed by a correlation
  of the grayscale pixels of at least `near_duplicate_correlation` (the hash
  alone pairs some different photos of plain scenes). At most
  `max_duplicate_fraction` of test images may have one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io

import numpy as np
from PIL import Image

from components.jpeg_pixels import rgb_pixels

SIZE, CHANNELS, HASH_BITS = 32, 3, 64
_GRAY = np.array([0.299, 0.587, 0.114], np.float32)
_CHUNK = 512  # query rows per hash comparison: 512 x 50,000 floats = 100 MB


@dataclasses.dataclass
class ImageValidationConfig:
  """Limits of these checks; a split over one of them fails validation."""
  max_undecodable_fraction: float = 0.0  # of a split's images not decoding to 32x32x3
  class_balance_tolerance: float = 0.25  # per split, |class count / (n/10) - 1| at most
  max_duplicate_fraction: float = 0.05  # of test images with a duplicate in train/validation
  near_duplicate_bits: int = 12  # pHash Hamming distance (of 64 bits) of a candidate pair
  near_duplicate_correlation: float = 0.9  # grayscale pixel correlation confirming one
  report_examples: int = 10  # examples listed per finding in report.json


@dataclasses.dataclass
class Split:
  """One split's images; `pixels` holds only those that decode (rows `ok`)."""
  name: str
  ids: list[str]
  labels: np.ndarray  # int64 [n]
  pixels: np.ndarray  # uint8 [len(ok), 32, 32, 3]
  ok: np.ndarray  # int64 indices into ids of the images that decode
  bad: list[tuple[str, str]]  # (id, why) of those that do not


def decode(name: str, ids: list[str], labels, encoded: list[bytes]) -> Split:
  """Decodes each image; one that is not 8-bit 32x32 RGB goes to `bad`."""
  pixels, ok, bad = [], [], []
  for index, (image_id, data) in enumerate(zip(ids, encoded)):
    fast = rgb_pixels(data, SIZE)  # PIL's pixels, when a colour 32x32 JPEG
    if fast is not None:
      pixels.append(fast)
      ok.append(index)
      continue
    try:
      with Image.open(io.BytesIO(data)) as image:
        image.load()
        shape = (image.size[1], image.size[0], len(image.getbands()))
        if image.mode != 'RGB' or shape != (SIZE, SIZE, CHANNELS):
          bad.append((image_id, f'{image.mode} {shape[1]}x{shape[0]}, '
                      f'not RGB {SIZE}x{SIZE}'))
          continue
        pixels.append(np.asarray(image, np.uint8))
        ok.append(index)
    except Exception as e:  # pylint: disable=broad-except
      bad.append((image_id, f'does not decode: {e}'))
  return Split(name, list(ids), np.asarray(labels, np.int64).reshape(-1),
               np.stack(pixels) if pixels else np.zeros((0, SIZE, SIZE, 3),
                                                        np.uint8),
               np.asarray(ok, np.int64), bad)


def _gray(pixels: np.ndarray) -> np.ndarray:
  return pixels.astype(np.float32) @ _GRAY


def _dct_rows(n: int = SIZE, keep: int = 8) -> np.ndarray:
  """The first `keep` rows of the orthonormal DCT-II matrix of size n."""
  k, i = np.arange(keep)[:, None], np.arange(n)[None, :]
  matrix = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
  matrix[0] /= np.sqrt(2.0)
  return matrix.astype(np.float32)


def phash(pixels: np.ndarray) -> np.ndarray:
  """bool [n, 64]: the DCT perceptual hash of each 32x32 RGB image."""
  dct = _dct_rows()
  out = np.zeros((len(pixels), HASH_BITS), bool)
  for start in range(0, len(pixels), 4096):
    low = dct @ _gray(pixels[start:start + 4096]) @ dct.T  # [b, 8, 8]
    low = low.reshape(len(low), HASH_BITS)
    out[start:start + len(low)] = low > np.median(low, axis=1, keepdims=True)
  return out


def _normalised(pixels: np.ndarray) -> np.ndarray:
  """Grayscale pixels with mean 0 and norm 1 per image: dot = correlation."""
  gray = _gray(pixels).reshape(len(pixels), -1)
  gray -= gray.mean(axis=1, keepdims=True)
  return gray / np.maximum(np.linalg.norm(gray, axis=1, keepdims=True), 1e-6)


def duplicates(references: list[Split], query: Split, max_bits: int,
               min_correlation: float) -> list[dict]:
  """One entry per query image with a duplicate among the references.

  Exact (identical pixels) wins over near; among near candidates, the one
  with the highest correlation. Entries are in query order.
  """
  found: dict[int, dict] = {}
  ref_ids = [s.ids[i] for s in references for i in s.ok]
  ref_labels = np.concatenate([s.labels[s.ok] for s in references]).tolist()
  query_labels = query.labels[query.ok].tolist()
  ref_pixels = np.concatenate([s.pixels for s in references])
  if not len(ref_pixels) or not len(query.pixels):
    return []
  digests = {hashlib.sha1(p.tobytes()).digest(): k
             for k, p in enumerate(ref_pixels)}
  for row, p in enumerate(query.pixels):
    match = digests.get(hashlib.sha1(p.tobytes()).digest())
    if match is not None:
      found[row] = {'test': query.ids[query.ok[row]], 'match': ref_ids[match],
                    'kind': 'exact', 'bits': 0, 'correlation': 1.0,
                    'labels': [query_labels[row], ref_labels[match]]}
  ref_signs = phash(ref_pixels).astype(np.float32) * 2 - 1
  query_signs = phash(query.pixels).astype(np.float32) * 2 - 1
  pairs = []  # dot of +-1 signs = 64 - 2 * Hamming distance
  for start in range(0, len(query_signs), _CHUNK):
    dots = query_signs[start:start + _CHUNK] @ ref_signs.T
    rows, cols = np.nonzero(dots >= HASH_BITS - 2 * max_bits)
    pairs.append(np.stack([rows + start, cols,
                           (HASH_BITS - dots[rows, cols]) // 2], axis=1))
  pairs = np.concatenate(pairs).astype(np.int64)
  pairs = pairs[~np.isin(pairs[:, 0], list(found))]
  if len(pairs):
    correlation = np.einsum('ij,ij->i', _normalised(query.pixels[pairs[:, 0]]),
                            _normalised(ref_pixels[pairs[:, 1]]))
    for (row, col, bits), corr in zip(pairs.tolist(), correlation.tolist()):
      if corr >= min_correlation and corr > found.get(row, {}).get(
          'correlation', -2.0):
        found[row] = {'test': query.ids[query.ok[row]], 'match': ref_ids[col],
                      'kind': 'near', 'bits': int(bits),
                      'correlation': round(float(corr), 4),
                      'labels': [query_labels[row], ref_labels[col]]}
  return sorted(found.values(), key=lambda f: (f['kind'] != 'exact', f['bits'],
                                               -f['correlation'], f['test']))


def class_counts(split: Split, num_classes: int) -> list[int]:
  labels = split.labels[(split.labels >= 0) & (split.labels < num_classes)]
  return np.bincount(labels, minlength=num_classes).tolist()


def check(splits: dict[str, Split], settings: dict, class_names: list[str],
          query: str = 'test') -> dict:
  """The report (JSON-ready): per-split findings, duplicates, failures."""
  report = {'splits': {}, 'failures': [], 'settings': dict(settings)}
  shown = int(settings['report_examples'])
  for name, split in splits.items():
    n = len(split.ids)
    counts = class_counts(split, len(class_names))
    even = n / len(class_names)
    deviation = max(abs(c / even - 1) for c in counts) if n else 0.0
    report['splits'][name] = {
        'images': n, 'undecodable': len(split.bad),
        'undecodable_examples': [list(b) for b in split.bad[:shown]],
        'class_counts': counts, 'class_deviation': round(deviation, 4)}
    if n and len(split.bad) / n > settings['max_undecodable_fraction']:
      report['failures'].append(
          f'{name}: {len(split.bad)} of {n} images ({len(split.bad) / n:.1%}) '
          f'do not decode to 32x32x3 (allowed '
          f'{settings["max_undecodable_fraction"]:.1%}), e.g. '
          + '; '.join(f'{i} ({why})' for i, why in split.bad[:3]))
    if deviation > settings['class_balance_tolerance']:
      report['failures'].append(
          f'{name}: a class count is {deviation:.0%} off the even share of '
          f'{even:.1f} (allowed {settings["class_balance_tolerance"]:.0%}): '
          + ', '.join(f'{c} {k}' for c, k in zip(class_names, counts)))
  references = [s for name, s in splits.items() if name != query]
  if query in splits and references:
    found = duplicates(references, splits[query],
                       int(settings['near_duplicate_bits']),
                       float(settings['near_duplicate_correlation']))
    n = len(splits[query].ids)
    exact = sum(f['kind'] == 'exact' for f in found)
    fraction = len(found) / n if n else 0.0
    report['duplicates'] = {
        'query': query, 'references': [s.name for s in references],
        'query_images': n, 'exact': exact, 'near': len(found) - exact,
        'fraction': round(fraction, 6),
        'per_class': np.bincount(
            np.array([f['labels'][0] for f in found
                      if 0 <= f['labels'][0] < len(class_names)], np.int64),
            minlength=len(class_names)).tolist(),
        'different_labels': sum(f['labels'][0] != f['labels'][1] for f in found),
        'examples': found[:shown]}
    if fraction > settings['max_duplicate_fraction']:
      report['failures'].append(
          f'{query}: {len(found)} of {n} images ({fraction:.1%}) duplicate '
          f'{"/".join(report["duplicates"]["references"])} images (allowed '
          f'{settings["max_duplicate_fraction"]:.1%}; {exact} exact, '
          f'{len(found) - exact} near), e.g. '
          + '; '.join(f'{f["test"]} ~ {f["match"]} ({f["kind"]})'
                      for f in found[:3]))
  report['passed'] = not report['failures']
  return report
