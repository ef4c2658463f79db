"""What pipeline.local does to third-party loggers during a run."""

import logging

from pipeline import local


def test_beams_dill_logger_switch_keeps_its_levels_and_skips_no_op_sets():
  """pipeline.local skips dill's setLevel when the level does not change
  (each one clears every logger's cache); a real change still happens."""
  logger = logging.Logger('dill-like')
  calls = []
  logger.setLevel = lambda level, real=logger.setLevel: (
      calls.append(level), real(level))
  set_level = local._set_level_when_changed(logger)
  for level in (logging.WARN, logging.WARN, logging.INFO, logging.INFO,
                logging.WARN):
    set_level(level)
    assert logger.level == level
  assert calls == [logging.WARN, logging.INFO, logging.WARN]
