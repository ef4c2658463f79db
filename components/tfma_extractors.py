"""TFMA's default extractors, fed record batches of a set size.

Called by TFX's Evaluator executor, which imports this module by the
`module_path` that `pipeline.create` gives each Evaluator and calls
`custom_extractors`. TFX reads the examples into Arrow record batches whose
size Beam adapts, from 1 upwards (tfx_bsl's `BeamSource`: 1 to 1,000
examples, about a second each), and TFMA calls the model once per batch: VGG16
at 32 px was called on batches of 1 to 4 examples hundreds of times. Here the
record batches are cut to `ModelSpec.inference_batch_size`
(`evaluation.batch_size`) rows before any extractor runs, with Arrow (no
per-example Python: re-batching the extracts after the features extractor,
split and merged per example, cost 0.3 s and 10,000 Beam elements per
Evaluator); every extractor is TFMA's default. What it bought is measured in
bench/RESULTS.md.
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import tensorflow_model_analysis as tfma
from apache_beam.transforms import window
from tensorflow_model_analysis.extractors import (extractor, predictions_extractor,
                                                  unbatch_extractor)

from components import tfma_metrics

STAGE_NAME = 'RebatchRecordBatches'


class _Rebatch(beam.DoFn):
  """Extracts holding only a record batch -> record batches of `size` rows,
  in their order; the last of a bundle holds what is left. Any other extract
  (TFMA's features given directly) passes through unchanged."""

  def __init__(self, size: int):
    self._size = size

  def start_bundle(self):
    self._pending: list[pa.RecordBatch] = []
    self._rows = 0

  def _take(self, rows: int) -> dict:
    table = pa.Table.from_batches(self._pending)
    head, rest = table.slice(0, rows), table.slice(rows)
    self._pending = [b for b in rest.to_batches() if b.num_rows]
    self._rows -= rows
    return {tfma.ARROW_RECORD_BATCH_KEY: head.combine_chunks().to_batches()[0]}

  def process(self, extracts):
    batch = extracts.get(tfma.ARROW_RECORD_BATCH_KEY)
    if batch is None or len(extracts) != 1:
      yield extracts
      return
    if self._pending and batch.schema != self._pending[0].schema:
      yield self._take(self._rows)  # a new set of columns starts a batch
    self._pending.append(batch)
    self._rows += batch.num_rows
    while self._rows >= self._size:
      yield self._take(self._size)

  def finish_bundle(self):
    if self._rows:
      yield window.GlobalWindows.windowed_value(self._take(self._rows))


def rebatch_extractor(size: int) -> extractor.Extractor:
  """The extractor that cuts the incoming record batches to `size` rows."""
  return extractor.Extractor(
      stage_name=STAGE_NAME,
      ptransform=beam.ParDo(_Rebatch(size)).with_input_types(dict))


def _batches_suffice(eval_config) -> bool:
  """Whether the metrics can take whole batches: every metric is one of
  `components.tfma_metrics` (which count and fold a batch at once) and the
  only slice is the whole split (a feature slice needs single examples)."""
  metrics = [m for spec in eval_config.metrics_specs for m in spec.metrics]
  return (bool(metrics)
          and all(m.module == tfma_metrics.__name__ for m in metrics)
          and all(spec == tfma.SlicingSpec() for spec in eval_config.slicing_specs)
          and not eval_config.cross_slicing_specs)


def custom_extractors(eval_shared_model, eval_config, tensor_adapter_config):
  """TFX's Evaluator hook: `tfma.default_extractors`, fed record batches of
  the model spec's `inference_batch_size` rows (left to Beam when 0), and
  without TFMA's UnbatchExtractor when `_batches_suffice`: the metrics then
  fold 40 batches instead of 10,000 single-example extracts (what that saved
  is in bench/RESULTS.md). The prediction extractor is given, as TFMA's own:
  given, it replaces TFMA's TransformedFeaturesExtractor, which calls the
  model's `transformed_features` signature (these models have none) on every
  batch."""
  predict = predictions_extractor.PredictionsExtractor(
      eval_config=eval_config, eval_shared_model=eval_shared_model)
  extractors = tfma.default_extractors(
      eval_shared_model=eval_shared_model, eval_config=eval_config,
      tensor_adapter_config=tensor_adapter_config,
      custom_predict_extractor=predict)
  if _batches_suffice(eval_config):
    extractors = [e for e in extractors
                  if e.stage_name != unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME]
  batch_size = max((spec.inference_batch_size for spec in eval_config.model_specs),
                   default=0)
  return [rebatch_extractor(batch_size)] + extractors if batch_size > 0 else extractors
