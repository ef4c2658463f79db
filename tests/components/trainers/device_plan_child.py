"""One forced device plan, in its own process: train, kill, resume, export, serve.

Run by `test_device_plans.py` as a subprocess (logical devices must be set up
before TensorFlow starts, so each plan needs a fresh process):

  python device_plan_child.py pipeline|run_fn SETTINGS_JSON OUT_JSON

SETTINGS_JSON holds `tmp` (a folder), `plans` ({plan name: {--set key:
value}}; plans sharing a process share its devices) and, for `run_fn`,
`transform` (the fn_args fields naming a Transform output). `pipeline` runs
the real local DAG (`pipeline.local.run`) again after each killed Trainer,
until it ends; `run_fn` calls each model's `run_fn` with a fake `fn_args`,
again after the kill. Either way each Trainer is killed once, mid its second
epoch; what the Trainers saw and served is written to OUT_JSON, per plan.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
sys.path.insert(0, ROOT)

from tests import conftest  # noqa: E402

CHECK_IMAGES = 20  # images sent to each exported model, as PNG and as JPEG


class Killed(Exception):
  """Stands for the Trainer's process being killed."""


def install_hooks(now: dict) -> None:
  """Kills each model once in its second epoch, records the training
  batches' checksums per `training_batches` call, and checks each export,
  into the results of the plan `now['plan']`."""
  import tensorflow as tf

  from components.trainers import data, export, loop
  trained = {}

  def kill(self, batch, logs=None):
    results = now['plan']
    if len(self.rows) == 1 and self.target.name not in results['killed']:
      results['killed'].append(self.target.name)
      raise Killed(f'{self.target.name} killed in epoch 2 after step {batch}')
  loop.EpochLog.on_train_batch_end = kill

  original_batches = data.training_batches

  def recorded(*args, first_epoch=0, steps, **kwargs):
    """Checksums by 'epoch/step' (epochs counted over phases): Keras may
    read the dataset through more than one iterator, positions stay true."""
    sums = {}
    now['plan']['batches'].append({'first_epoch': first_epoch, 'sums': sums})

    def note(index, images):
      key = f'{first_epoch + index // steps}/{index % steps}'
      sums.setdefault(key, float(np.asarray(images, np.float64).sum()))
      return np.float64(0)

    def tap(index, batch):
      images, labels = batch
      done = tf.numpy_function(note, [index, images], tf.float64)
      with tf.control_dependencies([done]):
        return tf.identity(images), labels
    return original_batches(*args, first_epoch=first_epoch, steps=steps,
                            **kwargs).enumerate().map(tap)
  data.training_batches = recorded

  original_augmentation, fitted = loop.with_augmentation, {}

  def with_augmentation(model, config):
    fitted['model'] = original_augmentation(model, config)  # what fit() runs
    return fitted['model']
  loop.with_augmentation = with_augmentation

  original_train = loop.train

  def train(model, config, batches, steps, val_batches, **kwargs):
    """Records the best epoch's logged validation accuracy beside the kept
    weights' accuracy through fit's own validation path (the compiled model
    evaluated: its device plan, XLA and steps per execution) and eagerly."""
    log = original_train(model, config, batches, steps, val_batches, **kwargs)
    evaluated = fitted['model'].evaluate(val_batches, verbose=0, return_dict=True)
    right = total = 0.0
    for images, labels, weights in val_batches:  # the best epoch's weights
      hits = np.argmax(model(images, training=False), 1) == np.argmax(labels, 1)
      right += float(np.sum(weights.numpy() * hits))
      total += float(np.sum(weights.numpy()))
    trained.update(model=model, validation=dict(
        logged=log.best, evaluated=evaluated['accuracy'], eager=right / total,
        images=total))
    return log
  loop.train = train

  original_export = export.export

  def checked_export(model, tft_output, class_names, directory, info, **kwargs):
    original_export(model, tft_output, class_names, directory, info, **kwargs)
    now['plan']['models'][info['model_name']] = dict(
        info=info, history=json.load(open(os.path.join(
            info['checkpoint_dir'], loop.HISTORY_FILE))),
        serving=check_serving(trained['model'], tft_output, directory,
                              kwargs.get('mirror', False)),
        validation=trained['validation'])
  export.export = checked_export


def encoded_examples(fmt: str) -> list[bytes]:
  from PIL import Image

  from components.ingest.executor import to_example
  images, labels = conftest.synthetic_images(2, seed=7)
  out = []
  for i, (image, label) in enumerate(zip(images[:CHECK_IMAGES], labels)):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt, quality=90)
    out.append(to_example(f'check-{i}', int(label), buffer.getvalue()))
  return out


def low_precision_ops(signature) -> list[str]:
  """Ops of the serving graph (and its functions) computing in bf16/fp16."""
  from tensorflow.core.framework import types_pb2
  low = {types_pb2.DT_BFLOAT16, types_pb2.DT_HALF}
  graph = signature.graph.as_graph_def()
  nodes = list(graph.node) + [n for f in graph.library.function
                              for n in f.node_def]
  return sorted({n.op for n in nodes for a in n.attr.values() if a.type in low})


def check_serving(trained, tft_output, directory: str, mirror: bool) -> dict:
  """The exported serving_default against the trained in-memory model (the
  mean of its answers on the images and their mirrors, with `mirror`)."""
  import tensorflow as tf
  signature = tf.saved_model.load(directory).signatures['serving_default']
  layer = tft_output.transform_features_layer()
  spec = {'image': tft_output.raw_feature_spec()['image']}
  out = {'low_precision_ops': low_precision_ops(signature)}
  for fmt in ('PNG', 'JPEG'):
    examples = encoded_examples(fmt)
    served = signature(examples=tf.constant(examples))['probabilities']
    images = layer(tf.io.parse_example(examples, spec))['image']
    plain = np.asarray(trained(images, training=False), np.float64)
    memory = plain
    if mirror:
      memory = (plain + np.asarray(trained(tf.reverse(images, axis=[2]),
                                           training=False), np.float64)) / 2
    probabilities = served.numpy().astype(np.float64)
    out[fmt] = dict(
        dtype=served.dtype.name,
        max_sum_error=float(np.abs(probabilities.sum(axis=1) - 1).max()),
        top_class_agreement=float(np.mean(
            probabilities.argmax(1) == memory.argmax(1))),
        max_probability_difference=float(np.abs(probabilities - memory).max()),
        mirror_effect=float(np.abs(memory - plain).max()),
        difference_from_plain=float(np.abs(probabilities - plain).max()))
  return out


def write_vgg16_weights(path: str, input_size: int) -> str:
  """A VGG16 base weights file (random init), as a user's file would be."""
  if not os.path.exists(path):
    import keras
    keras.applications.VGG16(include_top=False, weights=None,
                             input_shape=(input_size, input_size, 3)
                             ).save_weights(path)
  return path


def run_pipeline(settings: dict, results: dict, plan: str) -> None:
  import pathlib

  from pipeline import runs
  tmp = pathlib.Path(settings['tmp'])
  config = conftest.fixture_config(tmp / plan, **settings['plans'][plan])
  data = conftest.write_image_tree(tmp / 'data', n_train=10, n_test=4)
  for _ in config.models:
    try:
      conftest.run_pipeline(config, data)
    except Killed as error:
      results['kills'].append(str(error))
  conftest.run_pipeline(config, data)
  record = runs.list_runs(os.path.abspath(config.metadata_path))[0]
  results['states'] = {n.node_id: n.state for n in record.nodes}
  transform = record.node('Transform')
  examples = record.node('Cifar10ExampleGen').outputs['examples'][0].uri
  results['transform'] = dict(
      transform_output=transform.outputs['transform_graph'][0].uri,
      train_files=[os.path.join(examples, 'Split-train')],
      eval_files=[os.path.join(examples, 'Split-validation')])
  results['decision'] = runs.decision(record)


def run_trainers(settings: dict, results: dict, plan: str) -> None:
  """Each model's run_fn, as TFX's Trainer would call it, until it ends."""
  import importlib

  from components import settings as settings_lib
  from pipeline import config as config_lib
  from pipeline import overrides
  config = config_lib.preset('quick')
  for key, value in settings['plans'][plan].items():
    overrides.apply(config, f'{key}={value}')
  config_lib.validate(config)
  for name, trainer in config.models.items():
    folder = os.path.join(settings['tmp'], plan, name)
    fn_args = types.SimpleNamespace(  # as TFX lays out a Trainer's outputs
        **settings['transform'],
        model_run_dir=os.path.join(folder, 'model_run', '1'),
        serving_model_dir=os.path.join(folder, 'model', '1', 'Format-Serving'),
        custom_config={'model_name': name,
                       'settings': settings_lib.to_json(trainer),
                       'code_fingerprint': 'test'})
    run_fn = importlib.import_module(trainer.module).run_fn
    try:
      run_fn(fn_args)
    except Killed as error:
      results['kills'].append(str(error))
    run_fn(fn_args)


def main(mode: str, settings_file: str, out_file: str) -> int:
  with open(settings_file) as f:
    settings = json.load(f)
  from components.trainers import device
  first = next(iter(settings['plans'].values()))
  device.configure(first['alexnet.devices'])  # before TensorFlow starts
  write_vgg16_weights(first['vgg16.weights'], int(first['vgg16.input_size']))
  now, out = {}, {}
  install_hooks(now)
  for plan in settings['plans']:
    start = time.time()
    now['plan'] = out[plan] = {'kills': [], 'killed': [], 'batches': [],
                               'models': {}}
    (run_pipeline if mode == 'pipeline' else run_trainers)(settings, out[plan],
                                                           plan)
    out[plan]['seconds'] = time.time() - start
  with open(out_file, 'w') as f:
    json.dump(out, f, indent=1, default=str)
  return 0


if __name__ == '__main__':
  sys.exit(main(*sys.argv[1:]))
