"""`cifar10-tfx predict` with the model the fixture run pushed: valid class
names and probabilities that sum to 1 for PNG and JPEG files of any size;
a file that is not an image gets its own message and the others still run."""

from __future__ import annotations

import glob
import os

import pytest

from pipeline import cli
from pipeline.commands import predict
from tests.conftest import CLASS_NAMES, synthetic_images


def _blocks(out: str) -> dict[str, list[tuple[str, float]]]:
  """{file: [(class, probability)]} from predict's output."""
  blocks: dict = {}
  current = None
  for line in out.splitlines()[1:]:  # the first line names the model
    if line.startswith('  '):
      name, percent = line.split()
      blocks[current].append((name, float(percent.rstrip('%')) / 100.0))
    else:
      current = line
      blocks[current] = []
  return blocks


@pytest.fixture(scope='module')
def images(quick_run, tmp_path_factory):
  """Two fixture PNGs (32x32) and a 120x90 JPEG."""
  from PIL import Image
  _, data, _, _ = quick_run
  pngs = sorted(glob.glob(os.path.join(data, 'test', '*', '0000.png')))[:2]
  folder = tmp_path_factory.mktemp('predict')
  big = folder / 'big.jpg'
  Image.fromarray(synthetic_images(1, seed=9)[0][4]).resize((120, 90)).save(big)
  return pngs + [str(big)]


@pytest.mark.e2e
def test_predict_prints_top_k_classes_whose_probabilities_sum_to_1(
    quick_run, images, capsys):
  _, _, config, _ = quick_run
  model = os.path.join(config.serving.directory, 'cifar10')
  assert cli.main(['predict', *images, '--model', model, '--top-k', '10']) == 0
  captured = capsys.readouterr()
  assert captured.err == ''
  blocks = _blocks(captured.out)
  assert list(blocks) == images
  for top in blocks.values():
    assert sorted(name for name, _ in top) == sorted(CLASS_NAMES)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.e2e
def test_classify_gives_exact_probabilities(quick_run, images):
  import tensorflow as tf
  _, _, config, _ = quick_run
  folder = predict.resolve_model(os.path.join(config.serving.directory))
  serve = tf.saved_model.load(folder).signatures['serving_default']
  with open(images[-1], 'rb') as f:
    top = predict.classify(serve, f.read(), 10)
  assert {name for name, _ in top} == set(CLASS_NAMES)
  assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.e2e
def test_a_non_image_gets_its_message_and_the_others_still_run(
    quick_run, images, tmp_path, monkeypatch, capsys):
  _, _, config, _ = quick_run
  (tmp_path / 'serving_model').symlink_to(config.serving.directory)
  notes = tmp_path / 'notes.txt'
  notes.write_text('not a picture')
  monkeypatch.chdir(tmp_path)  # the default model: ./serving_model/cifar10
  code = cli.main(['predict', str(notes), images[0], 'missing.png'])
  captured = capsys.readouterr()
  assert code == 1
  assert f'{notes}: not an image (expected PNG or JPEG' in captured.err
  assert 'missing.png: no such file' in captured.err
  assert '2 of 3 files could not be classified' in captured.err
  assert 'Traceback' not in captured.err
  [(name, probability)] = _blocks(captured.out)[images[0]][:1]
  assert name in CLASS_NAMES and 0.0 < probability <= 1.0
  assert 'serving_model/cifar10/' in captured.out.splitlines()[0]


def test_predict_without_a_pushed_model_gives_one_message(
    tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  assert cli.main(['predict', 'x.png']) == 1
  err = capsys.readouterr().err
  assert 'No model folder at' in err and 'cifar10-tfx run' in err
  assert cli.main(['predict', 'x.png', '--model', str(tmp_path)]) == 1
  assert 'No SavedModel in' in capsys.readouterr().err
  assert cli.main(['predict', 'x.png', '--top-k', '11']) == 1
  assert '--top-k must lie between 1 and 10' in capsys.readouterr().err
