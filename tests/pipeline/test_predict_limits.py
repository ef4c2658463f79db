"""`cifar10-tfx predict` reads only regular, small files with sane headers, and
the served graph refuses the rest by itself.

Run by pytest. The model is a tiny SavedModel whose `serving_default` runs
`components.transform.decode_images` (what every exported model runs) on
the examples' images; the e2e case uses the pipeline's own pushed model.
"""

from __future__ import annotations

import os

import pytest

from pipeline import cli
from pipeline.commands import predict
from tests.components.test_image_limits import HOSTILE, encoded, png_bomb



def save_decoding_model(path: str) -> str:
  """A SavedModel answering 10 probabilities from the decoded pixels."""
  import tensorflow as tf

  from components import transform

  class Model(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string,
                                                name='examples')])
    def serve(self, examples):
      images = tf.io.parse_example(examples, {'image': tf.io.FixedLenFeature(
          [], tf.string)})['image']
      pixels = transform.decode_images(images)
      logits = tf.tile(tf.reduce_mean(pixels, axis=[1, 2]), [1, 4])[:, :10]
      probabilities = tf.nn.softmax(logits)
      ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
      return {'probabilities': probabilities, 'class_ids': ids,
              'classes': tf.gather(tf.constant(['c'] * 10), ids)}
  model = Model()
  tf.saved_model.save(model, path, signatures={
      'serving_default': model.serve.get_concrete_function()})
  return path


@pytest.fixture(scope='module')
def served(tmp_path_factory) -> str:
  """serving/cifar10 with version 3, and entries that are no versions."""
  folder = tmp_path_factory.mktemp('serving') / 'cifar10'
  save_decoding_model(str(folder / '3'))
  (folder / '7').write_text('a plain file named 7')
  (folder / '²').mkdir()
  save_decoding_model(str(folder / '٤'))  # an Arabic-Indic 4: no version
  return str(folder)


@pytest.mark.timeout(120)
def test_predict_picks_only_ascii_digit_versions(served):
  assert predict.resolve_model(served) == os.path.join(served, '3')


@pytest.mark.timeout(120)
def test_files_that_are_no_small_regular_images_are_refused_unread(tmp_path):
  fifo = tmp_path / 'fifo.png'
  os.mkfifo(fifo)
  (tmp_path / 'zero.png').symlink_to('/dev/zero')
  big = tmp_path / 'big.png'
  big.write_bytes(encoded('PNG'))
  os.truncate(big, 30 << 20)  # sparse: 30 MB declared, nothing to read
  for path, words in ((fifo, 'not a regular file'),
                      (tmp_path / 'zero.png', 'not a regular file'),
                      (big, 'larger than 20000000 bytes')):
    with pytest.raises(ValueError, match=words):
      predict.read_image(str(path))
  for name, data in HOSTILE.items():
    path = tmp_path / 'hostile'
    path.write_bytes(data)
    with pytest.raises(ValueError, match='header declares'):
      predict.read_image(str(path))


@pytest.mark.timeout(120)
def test_one_line_per_refused_file_and_the_others_classified(served, tmp_path,
                                                             capsys):
  good = tmp_path / 'good.jpg'
  good.write_bytes(encoded('JPEG', (500, 300)))
  bomb = tmp_path / 'bomb.png'
  bomb.write_bytes(png_bomb(20000, 20000, rows=10))
  fifo = tmp_path / 'fifo.jpg'
  os.mkfifo(fifo)
  code = cli.main(['predict', '--model', served, str(bomb), str(good), str(fifo)])
  out, err = capsys.readouterr()
  assert code == 1
  assert out.splitlines()[1] == str(good)
  assert err.splitlines() == [
      f'{bomb}: its PNG header declares 20000x20000 pixels, more than the '
      '4096x4096 the model accepts: shrink it first',
      f'{fifo}: not a regular file (a FIFO, device or socket)',
      '2 of 3 files could not be classified.']


@pytest.mark.timeout(120)
def test_the_served_graph_refuses_a_bomb_by_itself(served, tmp_path, capsys,
                                                   monkeypatch):
  """A model predict cannot pre-check (or TF Serving) still refuses it."""
  bomb = tmp_path / 'bomb.png'
  bomb.write_bytes(png_bomb(20000, 20000, rows=10))
  monkeypatch.setattr(predict.image_header, 'check', lambda data: None)
  code = cli.main(['predict', '--model', served, str(bomb)])
  err = capsys.readouterr().err
  assert code == 1
  assert err.splitlines()[0] == (
      f'{bomb}: could not be decoded as an image (the image header declares '
      'more than 4096x4096 pixels (width, height, frames at most))')


@pytest.mark.e2e
def test_the_pipelines_exported_model_refuses_a_bomb(quick_run):
  import tensorflow as tf
  _, _, config, _ = quick_run
  folder = predict.resolve_model(os.path.join(config.serving.directory,
                                              config.serving.model_name))
  serve = tf.saved_model.load(folder).signatures['serving_default']
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='header declares more than 4096x4096'):
    serve(examples=tf.constant([predict._example(png_bomb(20000, 20000, 10))]))
