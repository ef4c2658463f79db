"""Selection of the best blessed candidate, and the atomic, versioned push."""

import os

import pytest

from components import selector
from components.selector import Candidate


def test_better_blessed_candidate_is_chosen():
  decision = selector.select([Candidate('alexnet', 0.81, True),
                              Candidate('vgg16', 0.86, True)])
  assert decision.chosen == 'vgg16'
  assert '0.8100' in decision.reason and '0.8600' in decision.reason


def test_unblessed_candidate_loses_even_when_more_accurate():
  decision = selector.select([Candidate('alexnet', 0.81, True),
                              Candidate('vgg16', 0.95, False)])
  assert decision.chosen == 'alexnet'


def test_nothing_chosen_when_none_passes():
  decision = selector.select([Candidate('alexnet', 0.5, False),
                              Candidate('vgg16', 0.6, False)])
  assert decision.chosen is None
  assert 'no candidate passed' in decision.reason


def test_any_number_of_candidates_and_ties_keep_the_first():
  names = [f'm{i}' for i in range(5)]
  decision = selector.select([Candidate(n, 0.9, True) for n in names])
  assert decision.chosen == 'm0'


def test_push_writes_increasing_versions_without_leftovers(tmp_path):
  model = tmp_path / 'model'
  (model / 'variables').mkdir(parents=True)
  (model / 'saved_model.pb').write_bytes(b'pb')
  serving = tmp_path / 'serving'
  first = selector.push(str(model), str(serving), 'cifar10')
  second = selector.push(str(model), str(serving), 'cifar10')
  assert os.path.basename(first) == '1' and os.path.basename(second) == '2'
  assert sorted(os.listdir(serving / 'cifar10')) == ['1', '2']
  assert (serving / 'cifar10' / '2' / 'saved_model.pb').read_bytes() == b'pb'


def test_failed_copy_leaves_no_partial_version(tmp_path, monkeypatch):
  model = tmp_path / 'model'
  model.mkdir()
  (model / 'saved_model.pb').write_bytes(b'pb')
  serving = tmp_path / 'serving'
  selector.push(str(model), str(serving), 'cifar10')

  def broken_rename(src, dst):
    raise OSError('disk full')
  monkeypatch.setattr(selector.os, 'rename', broken_rename)
  with pytest.raises(OSError):
    selector.push(str(model), str(serving), 'cifar10')
  assert sorted(os.listdir(serving / 'cifar10')) == ['1']
