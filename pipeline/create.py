"""`create_pipeline`: the one definition of the DAG, for every orchestrator.

Called by the local runner (`pipeline/local.py`) and the Kubeflow compiler
(`pipeline/kubeflow.py`), each of which supplies the locations it runs
against: the pipeline root, the serving folder, the schema file, the
metadata connection (none on Kubeflow, whose cluster holds its own) and the
Beam arguments. Nothing here reads the machine it runs on, so the same call
serves both; as in TFX's penguin template, the DAG depends only on its
arguments. Read top to bottom, it is the DAG: ingest, validate (statistics
and images), gate, transform, train each model, evaluate each model, select
the best and push it if it is no worse than the served model.

Every custom node (and Transform and the Trainers, which run project code by
dotted path) carries `code_fingerprint` of its module's import closure
(`components/fingerprint.py`), so an edit of any module it runs re-runs it.
"""

from __future__ import annotations

import dataclasses

from components import settings
from components.fingerprint import code_fingerprint
from pipeline import evaluation
from pipeline.config import PipelineConfig


def trainer_id(name: str) -> str:
  return f'Trainer_{name}'


def evaluator_id(name: str) -> str:
  return f'Evaluator_{name}'


def create_pipeline(config: PipelineConfig, *, source, pipeline_root: str,
                    serving_dir: str, schema_uri: str,
                    metadata_connection_config=None,
                    beam_args: list[str] | None = None):
  """The TFX pipeline of `config`, against the given locations.

  Args:
    config: the validated configuration.
    source: a `components.ingest.sources.Source`, resolved by the caller (a
      bad `--data` fails before TFX starts).
    pipeline_root: where artifacts go (a folder or a bucket URL).
    serving_dir: where ModelSelector pushes (`<serving_dir>/<name>/<version>`).
    schema_uri: the curated schema file, as the nodes will see it.
    metadata_connection_config: ML Metadata's connection; None on Kubeflow.
    beam_args: Beam pipeline arguments of the Beam-powered nodes.
  """
  import tensorflow_data_validation as tfdv
  from tfx import v1 as tfx

  from components.data_gate import DataGate
  from components.image_validation import ImageValidator
  from components.ingest.component import Cifar10ExampleGen
  from components.selector import ModelSelector

  # 1. Ingest: tf.Examples (image PNG/JPEG, label, id) in train/validation/test.
  example_gen = Cifar10ExampleGen(source=source, data=config.data)

  # 2. Validate: statistics against the curated schema, the images themselves
  #    (decode, class balance, test duplicates in train), then the gate.
  schema_gen = tfx.components.ImportSchemaGen(schema_file=schema_uri)
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      stats_options=tfdv.StatsOptions(enable_semantic_domain_stats=True))
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  image_validator = ImageValidator(
      examples=example_gen.outputs['examples'],
      settings=settings.to_json(config.image_validation),
      code_fingerprint=code_fingerprint(ImageValidator.__module__))
  data_gate = DataGate(
      schema=schema_gen.outputs['schema'],
      anomalies=example_validator.outputs['anomalies'],
      image_report=image_validator.outputs['report'],
      code_fingerprint=code_fingerprint(DataGate.__module__))
  schema = data_gate.outputs['validated_schema']

  # 3. Transform: decode and normalise, statistics from train only. The graph
  #    is the output: the Trainers apply it to the raw examples as they load
  #    them (written out, the float pixels took 12 KB an example, ~10x the
  #    JPEG, and more time to write and read back than to decode again).
  preprocessing_fn = 'components.transform.preprocessing_fn'
  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'], schema=schema,
      preprocessing_fn=preprocessing_fn,
      splits_config=tfx.proto.SplitsConfig(analyze=['train']),
      custom_config={'code_fingerprint': code_fingerprint(
          preprocessing_fn.rpartition('.')[0])},
      materialize=False, disable_statistics=True)

  components = [example_gen, schema_gen, statistics_gen, example_validator,
                image_validator, data_gate, transform]

  # 4-5. Train and evaluate each candidate; test split for evaluation only.
  candidates = {}
  for name, trainer_config in config.models.items():
    trainer = tfx.components.Trainer(
        run_fn=f'{trainer_config.module}.run_fn',
        examples=example_gen.outputs['examples'],
        transform_graph=transform.outputs['transform_graph'],
        schema=schema,
        train_args=tfx.proto.TrainArgs(splits=['train']),
        eval_args=tfx.proto.EvalArgs(splits=['validation']),
        custom_config={'model_name': name,
                       'settings': settings.to_json(trainer_config),
                       'code_fingerprint': code_fingerprint(trainer_config.module)},
    ).with_id(trainer_id(name))
    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs['examples'],
        model=trainer.outputs['model'],
        eval_config=evaluation.eval_config(
            config.evaluation.accuracy_threshold, config.evaluation.batch_size),
        example_splits=['test'],
        module_path=evaluation.EXTRACTORS_MODULE,
    ).with_id(evaluator_id(name))
    candidates[name] = (trainer.outputs['model'],
                        evaluator.outputs['evaluation'],
                        evaluator.outputs['blessing'])
    components += [trainer, evaluator]

  # 6. Select the best blessed candidate; push it only if it beats (or ties)
  #    the served model on the same test split and answers a few requests.
  selector = ModelSelector(
      candidates, examples=example_gen.outputs['examples'],
      serving=dataclasses.replace(config.serving, directory=serving_dir),
  ).with_id('ModelSelector')
  components.append(selector)

  return tfx.dsl.Pipeline(
      pipeline_name=config.name,
      pipeline_root=pipeline_root,
      metadata_connection_config=metadata_connection_config,
      components=components,
      enable_cache=True,
      beam_pipeline_args=list(config.beam_args if beam_args is None
                              else beam_args))
