"""Run-level sections of the HTML report: the decision, the side-by-side model
table, the data, the pipeline's nodes and how to open the run in Jupyter.

Called by `pipeline/report/__init__.py` with the dicts made by
`pipeline/report/facts.py` and `pipeline/report/predictions.py`.
"""

from __future__ import annotations

import time

from pipeline.report.page import (esc, human_bytes, human_seconds, num, pct)


def _threshold_text(model: dict) -> str:
  """'accuracy ≥ 0.1: 0.1260 passed; ...' with pass/fail classes."""
  parts = []
  for found in model['thresholds']:
    bounds = ' and '.join(
        text for text in (f'≥ {found["lower"]:g}' if found['lower'] is not None
                          else '',
                          f'≤ {found["upper"]:g}' if found['upper'] is not None
                          else '') if text)
    value = model['metrics'].get(found['metric'])
    verdict = ('<span class="pass">passed</span>' if found['passed'] else
               '<span class="fail">failed</span>' if found['passed'] is False
               else 'not checked')
    parts.append(f'{esc(found["metric"])} {bounds}: {num(value)} {verdict}')
  return '; '.join(parts) or 'none configured'


def decision(facts: dict) -> str:
  found = facts['decision']
  if found is None:
    return ('<section id="decision" class="decision none"><h2>Decision</h2>'
            '<p class="headline">No decision recorded</p><p>The ModelSelector '
            f'did not finish in this run (status: {esc(facts["status"])}); '
            'nothing was pushed.</p></section>')
  models = {m['name']: m for m in facts['models']}
  chosen = found.get('chosen')
  lines = []
  if chosen:
    lines.append(f'<p class="headline">Pushed <b>{esc(chosen)}</b> as version '
                 f'<b>{esc(found.get("version"))}</b></p><p>to '
                 f'<code>{esc(found.get("destination"))}</code>'
                 + ('' if found.get('destination_exists') else
                    ' <span class="fail">(this folder no longer exists)</span>')
                 + '</p>')
    newest = found.get('newest_version')
    if newest is not None and newest != found.get('version'):
      lines.append(f'<p class="note">The newest version there is now {newest}: '
                   'a later push replaced this one.</p>')
  else:
    lines.append('<p class="headline">Nothing pushed</p>')
  reason = found.get('reason', '').split(':')[0]
  lines.append(f'<p><b>Why:</b> {esc(reason)}.</p>')
  rows = []
  for candidate in found.get('candidates', []):
    model = models.get(candidate['name'], {'metrics': {}, 'thresholds': []})
    count = model['metrics'].get('example_count')
    rows.append(
        f'<tr class="{"chosen" if candidate["name"] == chosen else ""}" '
        f'data-model="{esc(candidate["name"])}"><td>{esc(candidate["name"])}'
        + (' <span class="badge">pushed</span>' if candidate['name'] == chosen
           else '') +
        f'</td><td>{num(candidate["accuracy"])}</td>'
        f'<td>{f"{count:.0f}" if count is not None else "—"}</td>'
        f'<td class="text">{_threshold_text(model)}</td><td>'
        + ('<span class="pass">yes</span>' if candidate['blessed'] else
           '<span class="fail">no</span>') + '</td></tr>')
  lines.append('<table class="candidates"><tr><th>Model</th><th>Test accuracy'
               '</th><th>Test images</th><th class="text">Thresholds</th>'
               '<th>Blessed</th></tr>' + ''.join(rows) + '</table>')
  ranked = sorted(found.get('candidates', []), key=lambda c: -c['accuracy'])
  if len(ranked) >= 2:
    lead = 100.0 * (ranked[0]['accuracy'] - ranked[1]['accuracy'])
    lines.append(f'<p>{esc(ranked[0]["name"])} leads {esc(ranked[1]["name"])} '
                 f'by {lead:.1f} points of test accuracy.</p>')
  previous = found.get('previous')
  if previous:
    accuracy = previous['accuracy']
    now = {c['name']: c['accuracy'] for c in ranked}.get(chosen)
    if previous.get('same_model'):
      delta = ' This run pushed the same trained model again.'
    elif accuracy is None or now is None:
      delta = ''
    else:
      delta = (f' This push changes test accuracy by '
               f'{100.0 * (now - accuracy):+.1f} points'
               + ('' if previous['same_test_split'] else
                  ' (measured on different test splits)') + '.')
    lines.append(f'<p><b>Previously served:</b> version '
                 f'{esc(previous["version"])}, {esc(previous["model"])}, test '
                 f'accuracy {num(accuracy)} (run <code>{esc(previous["run_id"])}'
                 f'</code>).{delta}</p>')
  else:
    lines.append('<p class="note">No earlier push is recorded in this ML '
                 'Metadata store.</p>')
  if found.get('pushed_by') and found['pushed_by'] != facts['run_id']:
    lines.append(f'<p class="note">The ModelSelector came from cache: this push '
                 f'was made by run <code>{esc(found["pushed_by"])}</code>.</p>')
  none = '' if chosen else ' none'
  return (f'<section id="decision" class="decision{none}"><h2>Decision</h2>'
          + ''.join(lines) + '</section>')


def _weights(info: dict) -> str:
  """'ImageNet' or 'random', and why when the run asked for something else."""
  origin = info.get('weights_origin')
  if origin is None:
    return '—'
  label = 'ImageNet' if info.get('pretrained') else 'random'
  if origin.strip().lower() in (label.lower(), 'random initialisation'):
    return label
  short = origin.split(':')[0].strip()  # drop the error text after ':'
  if short.count('(') > short.count(')'):
    short += ')'
  return f'{label}<br><span class="note" title="{esc(origin)}">{esc(short)}</span>'


def comparison(facts: dict, predicted: dict) -> str:
  chosen = (facts['decision'] or {}).get('chosen')
  rows = []
  for model in facts['models']:
    info, metrics = model['info'], model['metrics']
    timing = predicted['models'].get(model['name'])
    badge = (' <span class="badge">pushed</span>' if model['name'] == chosen
             else '')
    cells = [pct(metrics.get('accuracy')), num(metrics.get('loss'), 3),
             pct(info.get('best_val_accuracy')),
             f'{info["params"]:,}' if 'params' in info else '—',
             human_bytes(model['size_bytes']),
             human_seconds(info.get('training_seconds')),
             esc(info.get('epochs_run', '—'))]
    rows.append(
        f'<tr class="{"chosen" if badge else ""}" data-model="{esc(model["name"])}"'
        f'><td>{esc(model["name"])}{badge}</td>'
        + ''.join(f'<td>{cell}</td>' for cell in cells)
        + f'<td class="text">{_weights(info)}</td><td>'
        + (f'{timing["ms_per_image"]:.2f}\u00a0ms' if timing else '—')
        + '</td></tr>')
  sample = predicted.get('sample_size', 0)
  note = (f'Latency: mean per image over {sample} test images in batches of 64 '
          'through the <code>serving_default</code> signature (decode, '
          'transform, model), measured on this machine after one warm-up call.'
          if sample else f'Latency not measured: {esc(predicted.get("error"))}.')
  return ('<section id="models"><h2>Models side by side</h2><table '
          'class="comparison"><tr><th>Model</th><th>Test accuracy</th><th>Test '
          'loss</th><th>Best val. accuracy</th><th>Parameters</th><th>Size on '
          'disk</th><th>Training time</th><th>Epochs run</th><th class="text">'
          'Weights from</th><th>Latency / image</th></tr>' + ''.join(rows) +
          f'</table><p class="note">{note}</p></section>')


def data(facts: dict) -> str:
  counts, names = facts['data']['counts'], facts['class_names']
  header = ''.join(f'<th>{esc(n)}</th>' for n in names)
  rows = ''.join(
      f'<tr><td>{esc(split)}</td>'
      + ''.join(f'<td>{per.get(i, "—")}</td>' for i in range(len(names)))
      + f'<td><b>{per.get(-1, "—")}</b></td></tr>'
      for split, per in sorted(counts.items(), key=lambda kv: (
          ['train', 'validation', 'test'] + [kv[0]]).index(kv[0])))
  table = (f'<table class="data"><tr><th>Split</th>{header}<th>Total</th></tr>'
           f'{rows}</table>' if counts else
           '<p class="note">No statistics recorded (StatisticsGen did not '
           'run).</p>')
  found = facts['data']['anomalies']
  if found is None:
    anomalies = '<p class="note">ExampleValidator did not run.</p>'
  elif not found:
    anomalies = ('<p><b>Anomalies:</b> <span class="pass">none</span> — '
                 'ExampleValidator found every split consistent with the '
                 'curated schema.</p>')
  else:
    anomalies = ('<p><b>Anomalies:</b></p><ul class="anomalies">' + ''.join(
        f'<li>{esc(line)}</li>' for line in found) + '</ul>')
  return ('<section id="data"><h2>Data</h2><p class="note">Images per split and '
          'class, from StatisticsGen.</p>' + table + anomalies + '</section>')


def pipeline(facts: dict) -> str:
  rows = ''.join(
      f'<tr><td>{esc(n["id"])}</td><td class="text">{esc(n["state"].lower())}'
      f'</td><td>{human_seconds(n["seconds"])}</td><td class="text">'
      + (f'outputs of run <code>{esc(n["origin"])}</code>' if n['origin']
         else '') + '</td></tr>' for n in facts['nodes'])
  return ('<section id="pipeline"><h2>Pipeline nodes</h2><table><tr><th>Node'
          '</th><th class="text">State</th><th>Wall time</th><th class="text">'
          f'Cached from</th></tr>{rows}</table></section>')


def jupyter(facts: dict) -> str:
  blocks = ''.join(
      f'<h3>{esc(m["name"])}</h3><pre>import tensorflow_model_analysis as tfma\n'
      f'result = tfma.load_eval_result({esc(repr(m["evaluation_uri"]))})\n'
      'tfma.view.render_slicing_metrics(result)  # or: tfma.view.render_plot'
      '(result)</pre>' for m in facts['models'] if m['evaluation_uri'])
  return ('<section id="jupyter"><h2>Open this evaluation in Jupyter</h2>'
          '<p class="note">TFMA\'s own interactive views (they need its '
          'notebook extension):</p>' + blocks + '</section>')


def header(facts: dict) -> str:
  started = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(facts['started']))
  return (f'<h1>CIFAR-10 pipeline run {esc(facts["run_id"])}</h1><div '
          f'class="meta">Started {started} · status {esc(facts["status"])} · '
          f'ML Metadata <code>{esc(facts["metadata_path"])}</code></div>')
