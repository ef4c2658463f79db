"""TFX's Evaluator with the extractors of components/tfma_extractors.py: the
model is called on batches of `inference_batch_size`, and the evaluation is
the one TFMA's default extractors make; and the metrics of
components/tfma_metrics.py write the confusion matrix plot TFMA's own
MultiClassConfusionMatrixPlot writes (each run side by side, here, through
TFX's Evaluator executor in Beam's DirectRunner, as the pipeline runs it)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

tf = pytest.importorskip('tensorflow')
tfma = pytest.importorskip('tensorflow_model_analysis')

from pipeline import evaluation  # noqa: E402

EXAMPLES = 700


@pytest.fixture(scope='module')
def artifacts(tmp_path_factory):
  """(examples dir, model dir): test examples whose image's first byte decides
  what a tiny SavedModel predicts (right for about half of them)."""
  base = tmp_path_factory.mktemp('evaluator')
  rng = np.random.default_rng(0)
  split = base / 'examples' / 'Split-test'
  split.mkdir(parents=True)
  with tf.io.TFRecordWriter(str(split / 'data.gz'), 'GZIP') as writer:
    for _ in range(EXAMPLES):
      label = int(rng.integers(10))
      first = label if rng.random() < 0.5 else int(rng.integers(256))
      feature = {
          'image': tf.train.Feature(bytes_list=tf.train.BytesList(
              value=[bytes([first]) + rng.bytes(20)])),
          'label': tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))}
      writer.write(tf.train.Example(features=tf.train.Features(
          feature=feature)).SerializeToString())

  class Model(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name='examples')])
    def serve(self, examples):
      image = tf.io.parse_example(
          examples, {'image': tf.io.FixedLenFeature([], tf.string)})['image']
      ids = tf.strings.unicode_decode(tf.strings.substr(image, 0, 1), 'ISO-8859-1')
      ids = tf.cast(ids.to_tensor()[:, 0] % 10, tf.int32)
      probabilities = tf.one_hot(ids, 10, 0.91, 0.01)
      return {'probabilities': probabilities, 'class_ids': ids,
              'classes': tf.strings.as_string(ids)}

  model = Model()
  serving = base / 'model' / 'Format-Serving'
  tf.saved_model.save(model, str(serving),
                      signatures={'serving_default': model.serve.get_concrete_function()})
  return str(base / 'examples'), str(base / 'model')


def evaluate(artifacts, out, module_path: str | None, batch_size: int,
             monkeypatch, config=None) -> tuple[dict, list[int]]:
  """({'metrics', 'plots' of the overall slice, 'blessing'}, model call batch
  sizes) of `config` (default: the pipeline's eval config)."""
  from tensorflow_model_analysis.utils import model_util, util
  from tfx.components.evaluator.executor import Executor
  from tfx.types import standard_artifacts
  from tfx.utils import proto_utils

  calls = []
  process = model_util.ModelSignaturesDoFn._batch_reducible_process

  def recorded(self, element):
    calls.append(util.batch_size(element))
    return process(self, element)
  monkeypatch.setattr(model_util.ModelSignaturesDoFn, '_batch_reducible_process',
                      recorded)
  examples = standard_artifacts.Examples()
  examples.uri, examples.split_names = artifacts[0], json.dumps(['test'])
  model = standard_artifacts.Model()
  model.uri = artifacts[1]
  outputs = {'evaluation': standard_artifacts.ModelEvaluation(),
             'blessing': standard_artifacts.ModelBlessing()}
  for name, artifact in outputs.items():
    artifact.uri = os.path.join(out, name)
    os.makedirs(artifact.uri)
  properties = {
      'eval_config': proto_utils.proto_to_json(
          config or evaluation.eval_config(0.3, batch_size)),
      'example_splits': json.dumps(['test']),
      'fairness_indicator_thresholds': 'null'}
  if module_path:
    properties['module_path'] = module_path
  Executor().Do({'examples': [examples], 'model': [model]},
                {name: [artifact] for name, artifact in outputs.items()},
                properties)
  result = tfma.load_eval_result(outputs['evaluation'].uri)
  (_, metrics), = result.slicing_metrics
  (_, plots), = result.plots
  blessed = os.listdir(outputs['blessing'].uri)
  return {'metrics': metrics, 'plots': plots, 'blessing': blessed}, calls


def assert_same(ours, theirs):
  """Equal, but for floats, which may differ in the last bits (a batch's
  loss is summed in another order than one example at a time)."""
  if isinstance(ours, dict):
    assert ours.keys() == theirs.keys()
    for key in ours:
      assert_same(ours[key], theirs[key])
  elif isinstance(ours, float):
    assert ours == pytest.approx(theirs, rel=1e-12)
  else:
    assert ours == theirs


def test_the_model_sees_batches_of_the_set_size_and_the_evaluation_is_unchanged(
    artifacts, tmp_path, monkeypatch):
  """TFMA's default extractors (one example at a time into the metrics)
  against ours (record batches of 256 rows, folded whole by the metrics)."""
  from components import tfma_metrics
  default, default_calls = evaluate(artifacts, str(tmp_path / 'a'), None, 256,
                                    monkeypatch)
  folded = []
  add_input = tfma_metrics._TopOneCombiner.add_input

  def recorded(self, accumulator, element):
    folded.append(len(element.label))
    return add_input(self, accumulator, element)
  monkeypatch.setattr(tfma_metrics._TopOneCombiner, 'add_input', recorded)
  batched, calls = evaluate(artifacts, str(tmp_path / 'b'),
                            evaluation.EXTRACTORS_MODULE, 256, monkeypatch)
  assert calls[-3:] == [256, 256, EXAMPLES - 512]
  assert sorted(folded) == [EXAMPLES - 512, 256, 256]  # whole batches
  assert sum(default_calls) >= EXAMPLES  # TFMA's own batches, left to Beam
  assert_same(batched, default)
  accuracy = default['metrics']['']['']['accuracy']['doubleValue']
  assert 0.4 < accuracy < 0.7 and default['blessing'] == ['BLESSED']


def test_batch_size_zero_leaves_the_batches_to_beam(artifacts, tmp_path,
                                                    monkeypatch):
  _, calls = evaluate(artifacts, str(tmp_path / 'c'),
                      evaluation.EXTRACTORS_MODULE, 0, monkeypatch)
  assert sum(calls) == EXAMPLES and calls[:3] == [1, 1, 2]  # Beam's ramp from 1


def test_the_plot_and_metrics_are_those_of_tfma_stock_plot(artifacts, tmp_path,
                                                           monkeypatch):
  """The pipeline's config against the same with TFMA's own
  MultiClassConfusionMatrixPlot in place of ours: the written evaluations
  (metrics, the plot, the blessing) are identical."""
  config = evaluation.eval_config(0.3, 256)
  stock = tfma.EvalConfig()
  stock.CopyFrom(config)
  (plot,) = [m for m in stock.metrics_specs[0].metrics
             if m.class_name == 'TopOneConfusionMatrixPlot']
  plot.Clear()
  plot.class_name = 'MultiClassConfusionMatrixPlot'
  ours, _ = evaluate(artifacts, str(tmp_path / 'ours'),
                     evaluation.EXTRACTORS_MODULE, 256, monkeypatch, config)
  theirs, _ = evaluate(artifacts, str(tmp_path / 'stock'),
                       evaluation.EXTRACTORS_MODULE, 256, monkeypatch, stock)
  assert_same(ours, theirs)
  matrix = ours['plots']['']['']['multiClassConfusionMatrixAtThresholds']
  assert sum(e.get('numWeightedExamples', 0)
             for e in matrix['matrices'][0]['entries']) == EXAMPLES


def test_record_batches_are_cut_to_the_set_size_in_order():
  """Beam's ramp of batch sizes in, exact batches out; a batch with other
  columns starts a new one; extracts without a record batch pass through."""
  import apache_beam as beam
  import pyarrow as pa
  from apache_beam.testing.util import assert_that, equal_to
  from components import tfma_extractors

  sizes = [1, 2, 4, 8, 16, 32, 64, 128, 256, 189]
  starts = np.cumsum([0] + sizes)
  inputs = [{tfma.ARROW_RECORD_BATCH_KEY: pa.RecordBatch.from_pydict(
      {'x': list(range(a, a + n))})} for a, n in zip(starts, sizes)]
  inputs.append({tfma.ARROW_RECORD_BATCH_KEY: pa.RecordBatch.from_pydict(
      {'y': [0.5] * 3})})
  inputs.append({tfma.FEATURES_KEY: {'x': np.arange(2)}})
  with beam.Pipeline() as pipeline:
    out = (pipeline | beam.Create([inputs]) | beam.FlatMap(lambda x: x)
           | tfma_extractors.rebatch_extractor(256).ptransform
           | beam.Map(lambda e: (tuple(e[tfma.ARROW_RECORD_BATCH_KEY].schema.names),
                                 e[tfma.ARROW_RECORD_BATCH_KEY].to_pydict())
                      if tfma.ARROW_RECORD_BATCH_KEY in e else ('features', None)))
    x = list(range(sum(sizes)))
    assert_that(out, equal_to([
        (('x',), {'x': x[:256]}), (('x',), {'x': x[256:512]}),
        (('x',), {'x': x[512:]}), (('y',), {'y': [0.5] * 3}),
        ('features', None)]))


@pytest.mark.parametrize('change, batched', [
    (None, True),
    ('feature slice', False),
    ('stock metric', False),
])
def test_whole_batches_reach_the_metrics_only_when_they_all_take_them(change,
                                                                      batched):
  """TFMA's UnbatchExtractor stays when a slice needs single examples or a
  metric is TFMA's own (its ExampleCount counts one per element)."""
  from components import tfma_extractors
  from tensorflow_model_analysis.extractors import unbatch_extractor
  config = evaluation.eval_config(0.3, 256)
  if change == 'feature slice':
    config.slicing_specs.add(feature_keys=['label'])
  elif change == 'stock metric':
    config.metrics_specs[0].metrics.add(class_name='ExampleCount')
  shared = tfma.default_eval_shared_model(eval_saved_model_path='unused',
                                          eval_config=config)
  stages = [e.stage_name for e in tfma_extractors.custom_extractors(
      shared, config, None)]
  assert stages[0] == tfma_extractors.STAGE_NAME
  assert (unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME not in stages) == batched
