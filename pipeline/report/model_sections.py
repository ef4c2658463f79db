"""Per-model sections of the HTML report, one card per model side by side:
training curves, per-class results, the confusion matrix, wrong test images.

Called by `pipeline/report/__init__.py` with the dicts made by
`pipeline/report/facts.py` and `pipeline/report/predictions.py`.
"""

from __future__ import annotations

from pipeline.report import charts
from pipeline.report.page import esc, image_uri, num, pct


def _cards(section_id: str, title: str, intro: str, cards: list[str]) -> str:
  return (f'<section id="{section_id}"><h2>{title}</h2>'
          + (f'<p class="note">{intro}</p>' if intro else '')
          + '<div class="cols">' + ''.join(cards) + '</div></section>')


def _card(model: dict, kind: str, body: str) -> str:
  return (f'<div class="card {kind}" data-model="{esc(model["name"])}"><h3>'
          f'{esc(model["name"])}</h3>{body}</div>')


def curves(facts: dict) -> str:
  cards = []
  for model in facts['models']:
    rows = model['history']
    if not rows:
      cards.append(_card(model, 'curves', '<p class="note">No history.json '
                         'in this Trainer\'s model_run artifact.</p>'))
      continue
    epochs = [row.get('epoch', i + 1) for i, row in enumerate(rows)]

    def series(key: str, label: str):
      return (label, epochs, [row.get(key) for row in rows])

    accuracy = charts.line_chart(
        [series('accuracy', 'training'), series('val_accuracy', 'validation')],
        'Accuracy', 'accuracy', y_range=(0.0, 1.0))
    loss = charts.line_chart(
        [series('loss', 'training'), series('val_loss', 'validation')],
        'Loss', 'loss')
    phases = sorted({row.get('phase', 'full') for row in rows})
    speed = [row['images_per_second'] for row in rows
             if 'images_per_second' in row]
    seconds = [row['seconds'] for row in rows if 'seconds' in row]
    note = (f'{len(rows)} epoch{"s" if len(rows) != 1 else ""}'
            + (f' (phases: {", ".join(phases)})' if len(phases) > 1 else '')
            + f'; best validation accuracy '
            f'{pct(max((r.get("val_accuracy", 0.0) for r in rows)))}'
            + (f'; {sum(seconds) / len(seconds):.0f} s per epoch, '
               f'{sum(speed) / len(speed):.0f} training images/s'
               if seconds and speed else '') + '.')
    cards.append(_card(model, 'curves', f'<div class="charts">{accuracy}{loss}'
                       f'</div><p class="note">{esc(note)}</p>'))
  return _cards('curves', 'Training and validation per epoch',
                'From each Trainer\'s history.json (training accuracy is '
                'measured on augmented images).', cards)


def _tfma_title(found: dict) -> str:
  values = ', '.join(f'{name} {num(found.get(name), 3)}'
                     for name in ('precision', 'recall') if name in found)
  return (f' title="TFMA binarized metrics (probability threshold 0.5): '
          f'{values}"' if values else '')


def per_class(facts: dict) -> str:
  names, cards = facts['class_names'], []
  for model in facts['models']:
    matrix = model['confusion']['matrix']
    rows = []
    for i, name in enumerate(names):
      images = sum(matrix[i]) if matrix else None
      correct = matrix[i][i] if matrix else None
      predicted = sum(row[i] for row in matrix) if matrix else 0
      precision = correct / predicted if predicted else None
      recall = correct / images if images else None
      bar = (f'<span class="bar" style="width:{60 * recall:.0f}px"></span>'
             if recall is not None else '')
      rows.append(
          f'<tr{_tfma_title(model["per_class"].get(i, {}))}><td>{esc(name)}</td>'
          f'<td>{"—" if images is None else f"{images:.0f}"}</td>'
          f'<td>{"—" if correct is None else f"{correct:.0f}"}</td>'
          f'<td>{num(precision, 3)}</td><td>{num(recall, 3)}{bar}</td></tr>')
    cards.append(_card(model, 'per-class', '<table><tr><th>Class</th><th>Test '
                       'images</th><th>Correct</th><th>Precision</th><th>Recall '
                       '(class accuracy)</th></tr>' + ''.join(rows) +
                       '</table>'))
  return _cards('classes', 'Per class on the test split',
                'From TFMA\'s confusion matrix, counting each image\'s top '
                'prediction: precision is the share of images predicted as a '
                'class that are that class; recall, the share of a class\'s '
                'images classified correctly. — : never predicted. (TFMA\'s '
                'binarized Precision/Recall metrics count a class as predicted '
                'only above probability 0.5; hover a row to see them.)', cards)


def confusion(facts: dict) -> str:
  cards = []
  for model in facts['models']:
    found = model['confusion']
    if not found['matrix']:
      cards.append(_card(model, 'confusion', '<p class="note">No '
                         'MultiClassConfusionMatrixPlot in this evaluation.</p>'))
      continue
    svg = charts.heat_map(found['matrix'], facts['class_names'],
                          f'{model["name"]}: true vs predicted class')
    extra = (f'<p class="note">{found["unpredicted"]:.0f} examples had no '
             'prediction above the threshold.</p>' if found['unpredicted']
             else '')
    cards.append(_card(model, 'confusion', svg + extra))
  return _cards('confusion', 'Confusion matrices',
                'From TFMA\'s MultiClassConfusionMatrixPlot. Rows: true class; '
                'columns: predicted class; colour: share of the row; the '
                'diagonal (outlined) is correct.', cards)


def mistakes(facts: dict, predicted: dict) -> str:
  names, cards = facts['class_names'], []
  if not predicted['models']:
    return ('<section id="mistakes"><h2>Test images the models get wrong</h2>'
            f'<p class="note">Not run: {esc(predicted.get("error"))}.</p>'
            '</section>')
  for model in facts['models']:
    found = predicted['models'].get(model['name'])
    if found is None:
      continue
    figures = ''.join(
        f'<figure><img alt="{esc(m["id"])}" src="{image_uri(m["image"])}">'
        f'<figcaption><span class="true">{esc(names[m["label"]])}</span><br>'
        f'<span class="pred">→ {esc(names[m["predicted"]])} '
        f'{m["confidence"]:.0%}</span></figcaption></figure>'
        for m in found['mistakes'])
    summary = (f'{pct(1.0 - found["sample_accuracy"])} of the sampled test '
               f'images wrong (accuracy on the sample '
               f'{pct(found["sample_accuracy"])}); {len(found["mistakes"])} of '
               'them, taking each true class in turn:')
    cards.append(_card(model, 'mistakes', f'<p class="note">{summary}</p>'
                       f'<div class="grid-images">{figures}</div>'))
  return _cards('mistakes', 'Test images the models get wrong',
                f'{predicted["sample_size"]} test images sampled evenly from '
                'the ExampleGen test split and classified by each SavedModel '
                'on this machine. Green: true class; red: predicted class and '
                'its probability.', cards)
