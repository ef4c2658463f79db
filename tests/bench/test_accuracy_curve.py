"""bench/accuracy_curve.py: the decoded-split cache and the summary line."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'bench'))
import accuracy_curve  # noqa: E402


def test_cache_round_trip_skips_decoding(tmp_path, monkeypatch):
  calls = []

  def fake_load(source, split, per_class):
    calls.append(split)
    n = {'train': 6, 'validation': 2, 'test': 4}[split]
    return np.full((n, 32, 32, 3), len(calls), np.uint8), np.arange(n)

  monkeypatch.setattr(accuracy_curve, 'load', fake_load)
  cache = str(tmp_path / 'splits.npz')
  first = accuracy_curve.load_all('archive', 0, cache)
  assert calls == ['train', 'validation', 'test'] and os.path.exists(cache)
  second = accuracy_curve.load_all('archive', 0, cache)
  assert calls == ['train', 'validation', 'test']  # read back, not decoded again
  for (x1, y1), (x2, y2) in zip(first, second):
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_summary_reports_test_accuracy_at_the_best_validation_epoch():
  rows = [dict(epoch=1, wall_s=10, val_acc=0.70, test_acc=0.69),
          dict(epoch=2, wall_s=20, val_acc=0.82, test_acc=0.80),
          dict(epoch=3, wall_s=30, val_acc=0.81, test_acc=0.815)]
  text = accuracy_curve.summarise(rows)
  assert 'best_epoch=2 ' in text and 'test_acc_at_best_val=0.8000' in text
  assert 'last_test_acc=0.8150' in text
  assert 'test_0.7912_at=epoch2/20s' in text and 'test_0.9000_at=never' in text


@pytest.mark.parametrize('argv', [['--epochs', 'x'], ['--bogus'],
                                  ['--preset', 'huge'], ['--model', 'resnet']])
def test_bad_arguments_exit_with_usage(argv):
  with pytest.raises(SystemExit) as exit_info:
    accuracy_curve.main(argv)
  assert exit_info.value.code == 2
