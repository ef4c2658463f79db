"""`create_pipeline(config)`: the one definition of the DAG.

Called by the local runner (`pipeline/local.py`) and, later, by the Kubeflow
runner; nothing here depends on the orchestrator. Read top to bottom, it is
the DAG: ingest, validate (statistics and images), gate, transform, train
each model, evaluate each model, select the best and push it if it is no
worse than the served model.
"""

from __future__ import annotations

import dataclasses
import json
import os

from pipeline import evaluation
from pipeline.config import CLASS_NAMES, PipelineConfig
from pipeline.fingerprint import ROOT, source_fingerprint

SCHEMA_FILE = str(ROOT / 'data' / 'schema.pbtxt')
SPLITS = ('train', 'validation', 'test')


def trainer_id(name: str) -> str:
  return f'Trainer_{name}'


def evaluator_id(name: str) -> str:
  return f'Evaluator_{name}'


def create_pipeline(config: PipelineConfig, source):
  """Builds the TFX pipeline for `config`, reading the resolved data `source`.

  Args:
    config: the validated configuration.
    source: a `components.ingest.sources.Source` (resolved by the caller, so
      that a bad `--data` fails before TFX starts).
  """
  import tensorflow_data_validation as tfdv
  from tfx import v1 as tfx

  from components.data_gate import DataGate
  from components.image_validation import ImageValidator
  from components.ingest.component import Cifar10ExampleGen
  from components.selector import ModelSelector

  # 1. Ingest: tf.Examples (image PNG, label, id) in train/validation/test.
  example_gen = Cifar10ExampleGen(
      source=source, data=config.data,
      code_fingerprint=source_fingerprint('components/ingest'))

  # 2. Validate: statistics against the curated schema, the images themselves
  #    (decode, class balance, test duplicates in train), then the gate.
  schema_gen = tfx.components.ImportSchemaGen(schema_file=SCHEMA_FILE)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True))
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  image_validator = ImageValidator(
      examples=example_gen.outputs['examples'],
      settings=json.dumps(dataclasses.asdict(config.image_validation),
                          sort_keys=True),
      class_names=json.dumps(list(CLASS_NAMES)),
      code_fingerprint=source_fingerprint('components/image_validation.py',
                                          'components/image_checks.py'))
  data_gate = DataGate(
      schema=schema_gen.outputs['schema'],
      anomalies=example_validator.outputs['anomalies'],
      image_report=image_validator.outputs['report'],
      code_fingerprint=source_fingerprint('components/data_gate.py',
                                          'components/image_validation.py'))
  schema = data_gate.outputs['validated_schema']

  # 3. Transform: decode and normalise, statistics from train only.
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'], schema=schema,
      preprocessing_fn='components.transform.preprocessing_fn',
      splits_config=tfx.proto.SplitsConfig(
          analyze=['train'], transform=['train', 'validation']),
      custom_config={'code_fingerprint':
                     source_fingerprint('components/transform.py')},
      disable_statistics=True)

  components = [example_gen, schema_gen, statistics_gen, example_validator,
                image_validator, data_gate, transform]

  # 4-5. Train and evaluate each candidate; test split for evaluation only.
  pipeline_root = os.path.abspath(os.path.join(config.root, 'artifacts'))
  trainer_code = source_fingerprint('components/trainers',
                                    'components/transform.py')
  candidates = {}
  for name, trainer_config in config.models.items():
    trainer = tfx.components.Trainer(
        run_fn=f'{trainer_config.module}.run_fn',
        examples=transform.outputs['transformed_examples'],
        transform_graph=transform.outputs['transform_graph'],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=['train']),
        eval_args=tfx.proto.EvalArgs(splits=['validation']),
        custom_config={**dataclasses.asdict(trainer_config),
                       'model_name': name, 'class_names': list(CLASS_NAMES),
                       'code_fingerprint': trainer_code,
                       'checkpoint_root': f'{pipeline_root}/checkpoints/{name}'},
    ).with_id(trainer_id(name))
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs['examples'],
        model=trainer.outputs['model'],
        eval_config=evaluation.eval_config(
            config.evaluation.accuracy_threshold, len(CLASS_NAMES)),
        example_splits=['test'],
    ).with_id(evaluator_id(name))
    candidates[name] = (trainer.outputs['model'],
                        evaluator.outputs['evaluation'],
                        evaluator.outputs['blessing'])
    components += [trainer, evaluator]

  # 6. Select the best blessed candidate; push it only if it beats (or ties)
  #    the served model on the same test split and answers a few requests.
  selector = ModelSelector(
      candidates, examples=example_gen.outputs['examples'],
      serving_dir=config.serving.directory,
      model_name=config.serving.model_name,
      baseline_tolerance=config.serving.baseline_tolerance,
      check_examples=config.serving.check_examples,
      code_fingerprint=source_fingerprint(
          'components/selector.py', 'components/push.py',
          'components/model_check.py', 'components/fileio.py'),
  ).with_id('ModelSelector')
  components.append(selector)

  return tfx.dsl.Pipeline(
      pipeline_name=config.name,
      pipeline_root=pipeline_root,
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              os.path.abspath(config.metadata_path))),
      components=components,
      enable_cache=True,
      beam_pipeline_args=list(config.beam_args))
