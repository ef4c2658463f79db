"""The KFP 2.x emulation (tests/kfp_emulator) on a two-task spec, in seconds.

Run by pytest. Shows that the emulation is as strict as KFP 2.x's driver
(schema 2.0.0 parameter forms and type mismatches fail), that placeholders
are substituted, that a producer's output metadata reaches its consumer
through MLMD's conversions, and that KFP's cache answers a repeated run.
"""

from __future__ import annotations

import copy
import json
import sys

import pytest

from tests import kfp_emulator

CHILD = '''
import json, os, sys
executor_input = json.loads(sys.argv[1])
record = os.environ['RECORD']
with open(record, 'a') as f:
  f.write(json.dumps({'argv': sys.argv[2:], 'input': executor_input,
                      'secret': os.environ.get('KEY')}) + '\\n')
outputs = executor_input['outputs']
os.makedirs(os.path.dirname(outputs['outputFile']), exist_ok=True)
with open(outputs['outputFile'], 'w') as f:
  json.dump({'artifacts': {name: {'artifacts': [{'metadata': {
      'split_names': '["train"]', 'count': 3, 'blessed': True}}]}
      for name in outputs['artifacts']}}, f)
'''
SCHEMA = {'instanceSchema': 'title: tfx.Examples\ntype: object\n'}


def make_spec(record: str) -> dict:
  def box(args):
    return {'container': {'image': 'img:1', 'command': [sys.executable, '-c', CHILD],
                          'args': ['{{$}}'] + args,
                          'env': [{'name': 'RECORD', 'value': record}]}}
  return {
      'pipelineInfo': {'name': 'tiny'},
      'components': {
          'a': {'executorLabel': 'a_executor', 'inputDefinitions': {'parameters': {
              'n': {'parameterType': 'NUMBER_INTEGER'},
              'path': {'parameterType': 'STRING'},
              'extra': {'parameterType': 'STRING', 'defaultValue': 'dflt'}}},
                'outputDefinitions': {'artifacts': {'out': {'artifactType': SCHEMA}}}},
          'b': {'executorLabel': 'b_executor', 'inputDefinitions': {
              'artifacts': {'examples': {'artifactType': SCHEMA}}}},
      },
      'deploymentSpec': {'executors': {
          'a_executor': box(["{{$.inputs.parameters['n']}}",
                             "{{$.inputs.parameters['extra']}}"]),
          'b_executor': box(["{{$.inputs.artifacts['examples'].uri}}"])}},
      'root': {'dag': {'tasks': {
          'A': {'componentRef': {'name': 'a'}, 'cachingOptions': {'enableCache': True},
                'inputs': {'parameters': {
                    'n': {'runtimeValue': {'constant': 3}},
                    'path': {'runtimeValue': {'constant': '/image/data/x.txt'}}}},
                'taskInfo': {'name': 'A'}},
          'B': {'componentRef': {'name': 'b'}, 'cachingOptions': {'enableCache': True},
                'dependentTasks': ['A'], 'taskInfo': {'name': 'B'},
                'inputs': {'artifacts': {'examples': {'taskOutputArtifact': {
                    'producerTask': 'A', 'outputArtifactKey': 'out'}}}}},
      }}},
  }


PLATFORM = {'platforms': {'kubernetes': {'deploymentSpec': {'executors': {
    'a_executor': {'secretAsEnv': [{'secretName': 's', 'keyToEnv': [
        {'secretKey': 'k', 'envVar': 'KEY'}]}]}}}}}}


def run(spec, tmp_path, store=None):
  (tmp_path / 'local').mkdir(exist_ok=True)
  return kfp_emulator.run(
      spec, PLATFORM, store=store or kfp_emulator.Metadata(),
      pipeline_root='s3://b/root', secrets={'s': {'k': 'v'}},
      workdir=str(tmp_path), image_root='/image',
      local_root=str(tmp_path / 'local'), echo=lambda _: None)


def test_a_run_substitutes_merges_metadata_and_a_repeat_is_cached(tmp_path):
  record = tmp_path / 'record.jsonl'
  spec, store = make_spec(str(record)), kfp_emulator.Metadata()
  first = run(spec, tmp_path, store)
  assert [(r.name, r.state) for r in first] == [('A', 'COMPLETE'), ('B', 'COMPLETE')]
  a, b = [json.loads(line) for line in record.read_text().splitlines()]
  assert a['argv'] == ['3', 'dflt'] and a['secret'] == 'v'
  assert a['input']['inputs']['parameterValues'] == {
      'n': 3, 'path': f'{tmp_path}/data/x.txt',  # the image root, mounted
      'extra': 'dflt'}  # addDefaultParams
  uri = a['input']['outputs']['artifacts']['out']['artifacts'][0]['uri']
  assert uri.startswith('s3://b/root/tiny/') and uri.endswith('/A/' + uri.split(
      '/')[-2] + '/out')
  (given,) = b['input']['inputs']['artifacts']['examples']['artifacts']
  assert b['argv'] == [uri] and given['uri'] == uri and given['name'] == '1'
  assert given['metadata'] == {'split_names': '["train"]', 'count': 3.0,
                               'blessed': 1, 'display_name': 'out'}
  assert b['secret'] is None  # the secret is mapped to A's executor only
  second = run(spec, tmp_path, store)
  assert [r.state for r in second] == ['CACHED', 'CACHED']
  assert len(record.read_text().splitlines()) == 2


@pytest.mark.parametrize('change, words', [
    (lambda s: s['root']['dag']['tasks']['A']['inputs']['parameters'].update(
        n={'runtimeValue': {'constantValue': {'intValue': '3'}}}),
     'runtimeValue.constant only'),
    (lambda s: s['components']['a']['inputDefinitions']['parameters'].update(
        n={'type': 'INT'}), 'no parameterType'),
    (lambda s: s['root']['dag']['tasks']['A']['inputs']['parameters'].update(
        n={'runtimeValue': {'constant': 'three'}}), 'type mismatch'),
    (lambda s: s['root']['dag']['tasks']['A']['inputs']['parameters'].pop('n'),
     'neither value nor default value'),
])
def test_what_the_driver_refuses_fails(change, words, tmp_path):
  spec = copy.deepcopy(make_spec(str(tmp_path / 'record.jsonl')))
  change(spec)
  with pytest.raises(kfp_emulator.SpecError, match=words):
    run(spec, tmp_path)
  assert not (tmp_path / 'record.jsonl').exists()
