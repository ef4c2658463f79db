"""`cifar10-tfx report` on the shared end-to-end run: the HTML says what the
run decided, shows both models side by side with labelled confusion matrices,
needs no network, and renders in headless Chromium without console errors
(the screenshot is kept as a test artifact under artifacts/)."""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from pipeline import cli, runs
from tests.conftest import CLASS_NAMES

ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / 'artifacts'
CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu',
                  '--disable-background-networking', '--disable-component-update',
                  '--disable-sync', '--no-first-run', '--enable-logging=stderr',
                  '--v=0', '--hide-scrollbars']


class Page(HTMLParser):
  """Text per section id and per (section id, data-model) card or row, the
  heat maps per model, and every src/href."""

  def __init__(self):
    super().__init__()
    self.stack: list[dict] = []
    self.text: dict = {}
    self.links: list[str] = []
    self.heatmaps: dict = {}
    self.tags: list[str] = []
    self.csp = ''

  def handle_starttag(self, tag, attrs):
    self._start(tag, dict(attrs), push=tag not in ('img', 'meta', 'br'))

  def handle_startendtag(self, tag, attrs):
    self._start(tag, dict(attrs), push=False)

  def _owner(self) -> str | None:
    return next((e['model'] for e in reversed(self.stack) if e['model']), None)

  def _start(self, tag: str, attrs: dict, push: bool) -> None:
    self.tags.append(tag)
    if tag == 'meta' and attrs.get('http-equiv') == 'Content-Security-Policy':
      self.csp = attrs.get('content', '')
    self.links += [attrs[k] for k in ('src', 'href') if attrs.get(k)]
    heatmap = tag == 'svg' and 'heatmap' in attrs.get('class', '')
    if heatmap:
      self.heatmaps.setdefault(self._owner(), []).append(
          {'labels': [], 'cells': 0})
    if tag == 'rect' and any(e['heatmap'] for e in self.stack):
      self.heatmaps[self._owner()][-1]['cells'] += 1
    if push:
      self.stack.append({'tag': tag, 'model': attrs.get('data-model'),
                         'section': attrs.get('id') if tag == 'section' else None,
                         'heatmap': heatmap, 'cls': attrs.get('class', '')})

  def handle_endtag(self, tag):
    if any(e['tag'] == tag for e in self.stack):
      while self.stack.pop()['tag'] != tag:
        pass

  def handle_data(self, data):
    sections = [e['section'] for e in self.stack if e['section']]
    if not sections:
      return
    models = [e['model'] for e in self.stack if e['model']]
    self.text[sections[-1]] = self.text.get(sections[-1], '') + data + ' '
    if models:
      key = (sections[-1], models[-1])
      self.text[key] = self.text.get(key, '') + data + ' '
    if any(e['heatmap'] for e in self.stack) and 'label' in self.stack[-1]['cls']:
      self.heatmaps[self._owner()][-1]['labels'].append(data.strip())


def test_report_of_a_run_that_stopped_early_says_so():
  from pipeline import report
  facts = {'run_id': 'r1', 'started': 0.0, 'status': 'failed at DataGate',
           'metadata_path': 'm.sqlite', 'class_names': list(CLASS_NAMES),
           'nodes': [{'id': 'DataGate', 'state': 'FAILED', 'seconds': 0.1,
                      'origin': None}],
           'decision': None, 'models': [],
           'data': {'counts': {}, 'anomalies': ["[train] feature 'label': "
                                                'out of range']},
           'test_examples': None}
  page = Page()
  page.feed(report.render(facts, {'sample_size': 0, 'models': {},
                                  'error': 'no trained models in this run'}))
  assert 'No decision recorded' in page.text['decision']
  assert 'failed at DataGate' in page.text['decision']
  assert "feature 'label': out of range" in page.text['data']
  assert 'no trained models' in page.text['mistakes']


@pytest.fixture(scope='module')
def report(quick_run, tmp_path_factory):
  """The report of the fixture run, written by the command line."""
  _, _, config, record = quick_run
  output = tmp_path_factory.mktemp('report') / 'report.html'
  code = cli.main(['report', '--root', config.root, '--run', record.run_id,
                   '--output', str(output)])
  assert code == 0
  page = Page()
  html = output.read_text(encoding='utf-8')
  page.feed(html)
  return output, html, page, record


@pytest.mark.e2e
def test_decision_comes_first_with_both_accuracies_and_thresholds(report):
  _, _, page, record = report
  decision = runs.decision(record)
  text = ' '.join(page.text['decision'].split())
  assert list(page.text)[0] == 'decision'
  assert f'Pushed {decision["chosen"]} as version {decision["version"]}' in text
  assert decision['destination'] in text
  for candidate in decision['candidates']:
    row = ' '.join(page.text[('decision', candidate['name'])].split())
    assert f'{candidate["accuracy"]:.4f}' in row
    assert 'accuracy ≥ 0' in row
    assert ('passed' if candidate['blessed'] else 'failed') in row


@pytest.mark.e2e
def test_both_models_have_a_row_with_every_column(report):
  _, _, page, _ = report
  for name in ('alexnet', 'vgg16'):
    row = ' '.join(page.text[('models', name)].split())
    assert name in row and '%' in row  # test accuracy
    assert 'MiB' in row or 'KiB' in row  # size on disk
    assert ' ms' in row  # latency measured here
    assert 'random' in row or 'ImageNet' in row  # where the weights came from
    assert row.count(',') >= 1  # parameter count, e.g. 1,234,567


@pytest.mark.e2e
def test_confusion_matrices_and_per_class_tables_name_every_class(report):
  _, _, page, _ = report
  for name in ('alexnet', 'vgg16'):
    [heatmap] = page.heatmaps[name]
    assert heatmap['cells'] == 100
    assert heatmap['labels'].count('cat') == 2  # a row and a column label
    assert set(CLASS_NAMES) <= set(heatmap['labels'])
    per_class = page.text[('classes', name)]
    assert all(c in per_class for c in CLASS_NAMES)
    assert page.text[('curves', name)].count('epoch') >= 2


@pytest.mark.e2e
def test_data_wrong_images_and_jupyter_lines(report):
  _, _, page, record = report
  data = ' '.join(page.text['data'].split())
  counts = runs.split_counts(record)
  for split in ('train', 'validation', 'test'):  # ten classes, then the total
    assert re.search(rf'{split}( \d+){{10}} {counts[split]} ', data), data
  assert 'Anomalies: none' in data
  assert 'test images sampled' in page.text['mistakes']
  jupyter = page.text['jupyter']
  assert 'tfma.load_eval_result(' in jupyter
  assert 'tfma.view.render_slicing_metrics(result)' in jupyter


@pytest.mark.e2e
def test_report_is_self_contained(report):
  _, html, page, _ = report
  assert "default-src 'none'" in page.csp
  assert not {'script', 'link', 'iframe', 'object'} & set(page.tags)
  assert page.links and all(link.startswith('data:image/') for link in page.links)
  assert 'url(' not in html and '@import' not in html  # nothing fetched by CSS


def _chromium() -> str | None:
  return next(filter(None, map(shutil.which, (
      'chromium', 'chromium-browser', 'google-chrome'))), None)


def _crop(png: pathlib.Path) -> None:
  """Cuts the empty background below the last section off the screenshot."""
  from PIL import Image
  image = Image.open(png).convert('RGB')
  background = image.getpixel((image.width - 1, image.height - 1))
  rows = image.height
  while rows > 1 and all(image.getpixel((x, rows - 1)) == background
                         for x in range(0, image.width, 7)):
    rows -= 1
  image.crop((0, 0, image.width, min(image.height, rows + 24))).save(png)


def _console_messages(browser: str, url: str, tmp, screenshot=None) -> list[str]:
  flags = CHROMIUM_FLAGS + [f'--user-data-dir={tmp}', '--window-size=1300,6000']
  if screenshot:
    flags.append(f'--screenshot={screenshot}')
  else:
    flags.append('--dump-dom')
  result = subprocess.run([browser] + flags + [url], capture_output=True,
                          text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  return [line for line in result.stderr.splitlines()
          if ':CONSOLE' in line or 'Uncaught' in line]


@pytest.mark.e2e
def test_report_renders_in_headless_chromium_without_console_errors(
    report, tmp_path):
  browser = _chromium()
  if browser is None:
    pytest.skip('Chromium is not installed (.ci/run installs Debian\'s '
                '`chromium` package; apt-get install -y chromium)')
  control = tmp_path / 'control.html'
  control.write_text('<!doctype html><p>x</p><script>nosuch()</script>')
  assert any('nosuch' in line for line in _console_messages(
      browser, control.as_uri(), tmp_path / 'profile-control'))
  output = report[0]
  ARTIFACTS.mkdir(exist_ok=True)
  screenshot = ARTIFACTS / 'report.png'
  if screenshot.exists():
    screenshot.unlink()
  messages = _console_messages(browser, output.as_uri(), tmp_path / 'profile',
                               screenshot=screenshot)
  assert messages == []
  assert screenshot.exists() and os.path.getsize(screenshot) > 20_000
  _crop(screenshot)
