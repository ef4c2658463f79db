"""The self-contained HTML report of one pipeline run.

Called by `pipeline/commands/report.py` (`cifar10-tfx report`) and by the
tests. `build` gathers the run's facts through ML Metadata (`facts`), runs
each SavedModel over a sample of the test split (`predictions`), and writes
one HTML file whose styles and SVG charts are inline and whose images are
data: URIs, so it opens anywhere without network access.
"""

from __future__ import annotations

import os

from pipeline.report import model_sections, page, sections


def render(facts: dict, predicted: dict) -> str:
  """The whole HTML document for `facts` (facts.gather) and `predicted`
  (predictions.evaluate)."""
  body = ''.join([
      sections.decision(facts),
      sections.comparison(facts, predicted),
      model_sections.curves(facts),
      model_sections.per_class(facts),
      model_sections.confusion(facts),
      sections.data(facts),
      model_sections.mistakes(facts, predicted),
      sections.pipeline(facts),
      sections.jupyter(facts),
  ])
  return page.page(f'CIFAR-10 run {facts["run_id"]}', sections.header(facts),
                   body)


def build(metadata_path: str, output: str, run_id: str | None = None,
          examples: int = 300) -> dict:
  """Writes the report of run `run_id` (newest if None) to `output`.

  Returns the facts, with 'predicted' and 'output' added. Raises
  pipeline.runs.RunNotFound when the run does not exist.
  """
  from pipeline.report import facts as facts_lib
  from pipeline.report import predictions
  found = facts_lib.gather(metadata_path, run_id)
  predicted = predictions.evaluate(found['models'], found['test_examples'],
                                   examples) if examples > 0 else {
      'sample_size': 0, 'models': {}, 'error': 'skipped (--examples 0)'}
  html = render(found, predicted)
  folder = os.path.dirname(os.path.abspath(output))
  os.makedirs(folder, exist_ok=True)
  temporary = f'{output}.partial'
  with open(temporary, 'w', encoding='utf-8') as f:
    f.write(html)
  os.replace(temporary, output)
  return dict(found, predicted=predicted, output=os.path.abspath(output))
