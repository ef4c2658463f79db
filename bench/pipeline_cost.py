"""The pipeline's own cost: every component but training, on a whole data set.

Run by a person (not by the tests), with the project's environment:

  .venv/bin/python bench/pipeline_cost.py --data ../shared/datasets/cifar10-jpeg.tar.gz

Runs the real DAG with token Trainers (one step each, VGG16 from random
weights: their cost is not what this measures) on all the data at --data,
prints the wall time of each component and its share of the run, then times a
plain batched inference of each exported SavedModel over the same test
examples the Evaluators read (what `model.evaluate` does for a Keras model,
the examples read into memory first; the median of --passes passes, each
printed: one pass moved by up to 40% between runs on a shared machine),
a second, identical run in this process that should come from cache, and
the same again as a user runs it: `cifar10-tfx run` in a fresh process, end
to end (imports included). Ends with one line:
`nontraining_s=… evaluator_ratio=… cached_rerun_s=… cached_cli_s=…`, where
nontraining_s sums every node from ingestion through Transform (ExampleGen,
the schema, StatisticsGen, both validators, the gate, Transform).
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipeline import config as config_lib  # noqa: E402
from pipeline import overrides  # noqa: E402

NONTRAINING = ('Cifar10ExampleGen', 'ImportSchemaGen', 'StatisticsGen',
               'ExampleValidator', 'ImageValidator', 'DataGate', 'Transform')
# The token Trainers, as --set assignments the CLI run repeats.
TOKEN = ('epochs=1', 'steps_per_epoch=1', 'batch_size=32', 'head_epochs=0',
         'early_stopping_patience=0', 'weights=none', 'require_weights=false',
         'input_size=32')


def plain_inference_seconds(saved_model_dir: str, examples_glob: str,
                            batch_size: int, passes: int
                            ) -> tuple[list[float], float, int]:
  """([seconds of each pass], accuracy, n) of the serving signature over the
  raw examples, read into batches beforehand: a pass times the model's calls
  only (iterating the tf.data file reader itself ended with a 4.5-s stall in
  about half the passes, at the end of the iteration, which no model call
  holds)."""
  import numpy as np
  import tensorflow as tf
  files = sorted(glob.glob(examples_glob))
  batches = list(tf.data.TFRecordDataset(files, compression_type='GZIP')
                 .batch(batch_size))
  label = {'label': tf.io.FixedLenFeature([], tf.int64)}
  truth = np.concatenate([tf.io.parse_example(batch, label)['label'].numpy()
                          for batch in batches])
  model = tf.saved_model.load(saved_model_dir)
  serve = model.signatures['serving_default']
  serve(examples=batches[0])  # warm-up: tracing, first allocations
  seconds = []
  for _ in range(passes):
    start = time.perf_counter()
    predicted = np.concatenate([serve(examples=batch)['class_ids'].numpy()
                                for batch in batches])
    seconds.append(time.perf_counter() - start)
  return seconds, float((predicted == truth).mean()), len(truth)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--data', required=True)
  parser.add_argument('--root', help='default: a temporary folder')
  parser.add_argument('--set', dest='overrides', action='append', default=[])
  parser.add_argument('--passes', type=int, default=3,
                      help='plain inference passes per model (their median counts)')
  args = parser.parse_args(argv)

  config = config_lib.preset('full')
  assignments = [f'{name}.{setting}' for name in config.models for setting in TOKEN]
  assignments += ['evaluation.accuracy_threshold=0.0'] + args.overrides
  for assignment in assignments:
    overrides.apply(config, assignment)
  root = args.root or tempfile.mkdtemp(prefix='pipeline-cost-')
  config.root = os.path.join(root, 'root')
  config.serving.directory = os.path.join(root, 'serving')
  config.data.source = args.data  # as `cifar10-tfx run --data` sets it
  config_lib.validate(config)

  from components.ingest import sources
  from pipeline import local, runs, timings
  source = sources.resolve_source(args.data, config.data.cache_dir)
  start = time.time()
  record = local.run(config, source, echo=print)
  first_wall = time.time() - start
  print(timings.format_table(timings.table(record)))
  total = sum(n.seconds for n in record.nodes)
  print('share of the run: ' + ', '.join(
      f'{n.node_id} {n.seconds / total:.0%}' for n in record.nodes))
  nontraining = sum(n.seconds for n in record.nodes if n.node_id in NONTRAINING)

  test_glob = os.path.join(
      record.node('Cifar10ExampleGen').outputs['examples'][0].uri, 'Split-test', '*')
  ratios = []
  for name in config.models:
    model_uri = record.node(f'Trainer_{name}').outputs['model'][0].uri
    passes, accuracy, n = plain_inference_seconds(
        os.path.join(model_uri, 'Format-Serving'), test_glob,
        config.evaluation.batch_size, args.passes)
    seconds = statistics.median(passes)
    evaluator = record.node(f'Evaluator_{name}').seconds
    ratios.append(evaluator / seconds)
    print(f'{name}: Evaluator {evaluator:.1f} s, plain inference {seconds:.1f} s '
          f'(median of {", ".join(f"{p:.1f}" for p in passes)}) on {n} test '
          f'images (accuracy {accuracy:.4f}), ratio {ratios[-1]:.2f}')

  start = time.time()
  again = local.run(config, source, echo=print)
  cached_wall = time.time() - start
  states = {n.node_id: n.state for n in again.nodes}
  print(f'second run: {cached_wall:.1f} s, states {sorted(set(states.values()))}')
  cli = [os.path.join(os.path.dirname(sys.executable), 'cifar10-tfx'), 'run',
         '--preset', 'full', '--data', args.data, '--root', config.root,
         '--serving-dir', config.serving.directory]
  cli += [arg for assignment in assignments for arg in ('--set', assignment)]
  start = time.time()
  done = subprocess.run(cli, capture_output=True, text=True, check=False)
  cached_cli = time.time() - start
  cli_states = {n.state for n in runs.list_runs(
      os.path.abspath(config.metadata_path))[0].nodes}
  if done.returncode or cli_states != {'CACHED'}:
    sys.exit(f'the CLI run was not a cached run ({done.returncode}, states '
             f'{sorted(cli_states)}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}')
  print(f'cached CLI run: {cached_cli:.1f} s, end to end in a new process')
  print(f'first run wall {first_wall:.1f} s (imports excluded)')
  print(f'nontraining_s={nontraining:.1f} evaluator_ratio={max(ratios):.2f} '
        f'cached_rerun_s={cached_wall:.1f} cached_cli_s={cached_cli:.1f}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
