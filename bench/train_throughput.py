"""Training throughput: the Trainer's path against bare Keras, input against the reference.

Run by a person (not by the tests), with the project's environment:

  .venv/bin/python bench/train_throughput.py [--batch 64] [--steps 8] [--repeats 5]
      [--policy mixed_bfloat16] [--input-size 48]

Prints, as medians over interleaved repeated short runs in this one process:
 (i)   images/s of the AlexNet training step through the Trainer's own input
       pipeline (cached tf.data -> batches; loading is once per run) and its
       training model (batch augmentation layer + AlexNet, the Trainer's compile);
 (ii)  images/s of bare `model.fit` on in-memory tensors, same model and batch;
 (iii) images/s the Trainer's augmented input pipeline delivers alone (batches
       from tf.data, augmented by the same layer, no model);
 (iv)  images/s of the reference notebook's input path,
       `ImageDataGenerator(rotation_range=20, width_shift_range=0.2,
       height_shift_range=0.2, horizontal_flip=True).flow(x, y, batch_size=64)`;
 (v)   with `--policy mixed_bfloat16` (or another Keras policy) and/or
       `--input-size N`, images/s of (i) built and trained under that policy
       with AlexNet upsampling its images to N px, and its ratio to (i):
       whether a precision pays on this machine (the `cpu` preset's
       native_bfloat16), what a larger input costs.
It ends with one line of figures and ratios. Synthetic images stand in for
CIFAR-10: throughput does not depend on pixel values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '3')

import numpy as np  # noqa: E402


def cached_examples(n: int):
  """What `data.load_split` returns once loaded: (image float[32,32,3],
  one-hot label) pairs, cached in memory; the batches come from here."""
  import tensorflow as tf
  rng = np.random.default_rng(0)
  images = rng.normal(size=(n, 32, 32, 3)).astype('float32')
  labels = np.eye(10, dtype='float32')[np.arange(n) % 10]
  return tf.data.Dataset.from_tensor_slices((images, labels)).cache()


def timed(run, images: int) -> float:
  start = time.perf_counter()
  run()
  return images / (time.perf_counter() - start)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--steps', type=int, default=8, help='train steps per run')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--examples', type=int, default=4096)
  parser.add_argument('--policy', default='',
                      help='a Keras policy to time (i) under as well, e.g. '
                           'mixed_bfloat16 (default: none)')
  parser.add_argument('--input-size', type=int, default=32,
                      help="AlexNet's input_size for the timed variant (v)")
  args = parser.parse_args(argv)

  import keras
  import tensorflow as tf

  from components.trainers import augment, data, loop, models
  from pipeline.config import TrainerConfig

  config = TrainerConfig(batch_size=args.batch, warmup_epochs=0)
  examples = cached_examples(args.examples)
  n = data.count(examples)
  batches = data.training_batches(examples, num_examples=n,
                                  batch_size=args.batch,
                                  steps=n // args.batch, seed=0)

  def training_model(input_size=32):  # the Trainer's: augmentation + AlexNet
    model = loop.with_augmentation(
        models.build_alexnet(input_size=input_size), config)
    loop.compile_model(model, config, peak_lr=0.01, total_steps=10**6,
                       warmup_steps=0)
    return model

  training = training_model()
  variant = bool(args.policy) or args.input_size != 32
  if variant:  # (v): the training model under another policy or input size
    keras.mixed_precision.set_global_policy(args.policy or 'float32')
    other = training_model(args.input_size)
    keras.mixed_precision.set_global_policy('float32')
  bare = models.build_alexnet()
  bare.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True),
               loss='categorical_crossentropy', metrics=['accuracy'])
  rng = np.random.default_rng(1)
  x = rng.normal(size=(args.batch * args.steps, 32, 32, 3)).astype('float32')
  y = keras.utils.to_categorical(rng.integers(0, 10, len(x)), 10)

  def trainer_run():
    training.fit(batches, epochs=1, steps_per_epoch=args.steps, verbose=0)

  def variant_run():
    other.fit(batches, epochs=1, steps_per_epoch=args.steps, verbose=0)

  def bare_run():
    bare.fit(x, y, batch_size=args.batch, epochs=1, verbose=0, shuffle=True)

  layer = augment.BatchAugment(4, True, 0.0, seed=0)
  input_steps = 200
  pipeline_batches = batches.take(input_steps)

  @tf.function
  def drain():
    # The batches as the train step receives them: pulled from tf.data and
    # augmented inside one compiled function (no Python per batch).
    total = tf.constant(0.0)
    for images, _ in pipeline_batches:
      total += tf.reduce_sum(layer(images, training=True)[:, 0, 0, 0])
    return total

  def input_run():
    drain().numpy()

  try:
    from tf_keras.preprocessing.image import ImageDataGenerator
  except ImportError:
    from keras.src.legacy.preprocessing.image import ImageDataGenerator
  raw = rng.integers(0, 256, size=(args.examples, 32, 32, 3)).astype('float32')
  labels = keras.utils.to_categorical(rng.integers(0, 10, len(raw)), 10)
  flow = ImageDataGenerator(rotation_range=20, width_shift_range=0.2,
                            height_shift_range=0.2, horizontal_flip=True
                            ).flow(raw, labels, batch_size=64)
  reference_steps = 20

  def reference_run():
    for _ in range(reference_steps):
      next(flow)

  runs = [trainer_run, bare_run, input_run, reference_run]
  results = {'trainer': [], 'bare': [], 'input': [], 'reference': []}
  if variant:
    runs.append(variant_run)
    results['variant'] = []
  for warm in runs:
    warm()
  for repeat in range(args.repeats):
    results['trainer'].append(timed(trainer_run, args.batch * args.steps))
    if variant:  # right after (i), so that both see the same machine
      results['variant'].append(timed(variant_run, args.batch * args.steps))
    results['bare'].append(timed(bare_run, args.batch * args.steps))
    results['input'].append(timed(input_run, args.batch * input_steps))
    results['reference'].append(timed(reference_run, 64 * reference_steps))
    print(f'repeat {repeat + 1}: ' + ' '.join(
        f'{k}={v[-1]:.1f}' for k, v in results.items()), flush=True)
  median = {k: statistics.median(v) for k, v in results.items()}
  print(f'trainer_img_s={median["trainer"]:.1f} bare_img_s={median["bare"]:.1f} '
        f'input_img_s={median["input"]:.1f} '
        f'reference_input_img_s={median["reference"]:.1f} '
        f'ratio_trainer_vs_bare={median["trainer"] / median["bare"]:.3f} '
        f'ratio_input_vs_reference={median["input"] / median["reference"]:.1f}')
  if variant:
    print(f'variant policy={args.policy or "float32"} input_size='
          f'{args.input_size} trainer_img_s={median["variant"]:.1f} '
          f'ratio_vs_float32_32px={median["variant"] / median["trainer"]:.3f}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
