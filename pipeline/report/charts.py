"""Inline SVG charts for the HTML report: line charts and a labelled heat map.

Called by `pipeline/report/sections.py`. Pure string building from plain
numbers; no plotting library, no script, nothing fetched by the browser.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ('#1f5fa8', '#d9822b', '#2e8b57', '#b03a48')


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
  """About `count` round tick values covering [low, high]."""
  if high <= low:
    high = low + 1.0
  raw = (high - low) / max(count - 1, 1)
  magnitude = 10 ** math.floor(math.log10(raw))
  step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
  start = math.floor(low / step) * step
  ticks, value = [], start
  while value <= high + step * 1e-6:
    ticks.append(round(value, 10))
    value += step
  if ticks[-1] < high:
    ticks.append(round(value, 10))
  return ticks


def _format(value: float, step: float) -> str:
  """A tick label with just the decimals that `step` needs."""
  decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
  decimals += 1 if round(step * 10 ** decimals, 6) % 1 else 0  # 0.25: 2
  return f'{value:,.{decimals}f}'


def line_chart(series: list[tuple[str, list[float], list[float]]], title: str,
               y_label: str = '', y_range: tuple[float, float] | None = None,
               width: int = 264, height: int = 200) -> str:
  """An SVG line chart; `series` is [(label, xs, ys)], one colour each.

  A series with a single point is drawn as a dot, so a one-epoch run still
  shows its value.
  """
  left, right, top, bottom = 52, 10, 26, 34
  xs_all = [x for _, xs, _ in series for x in xs]
  ys_all = [y for _, _, ys in series for y in ys if y is not None and
            math.isfinite(y)]
  if not xs_all or not ys_all:
    return (f'<svg class="chart" width="{width}" height="{height}" role="img" '
            f'aria-label="{escape(title)}"><text x="10" y="20">'
            f'{escape(title)}: no data</text></svg>')
  x_low, x_high = min(xs_all), max(xs_all)
  if x_low == x_high:
    x_low, x_high = x_low - 0.5, x_high + 0.5
  y_ticks = _nice_ticks(*(y_range or (min(ys_all), max(ys_all))))
  y_low, y_high = y_ticks[0], y_ticks[-1]
  step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0
  plot_w, plot_h = width - left - right, height - top - bottom

  def px(x: float) -> float:
    return left + (x - x_low) / (x_high - x_low) * plot_w

  def py(y: float) -> float:
    return top + plot_h - (y - y_low) / (y_high - y_low) * plot_h

  parts = [f'<svg class="chart" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text class="title" x="{left - 8}" y="16">{escape(title)}</text>']
  for tick in y_ticks:
    y = py(tick)
    parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" '
                 f'y1="{y:.1f}" y2="{y:.1f}"/><text class="tick" x="{left - 4}" '
                 f'y="{y + 3:.1f}" text-anchor="end">{_format(tick, step)}</text>')
  x_ticks = sorted({round(x) for x in xs_all})
  stride = max(1, math.ceil(len(x_ticks) / 8))
  for tick in x_ticks[::stride]:
    parts.append(f'<text class="tick" x="{px(tick):.1f}" y="{top + plot_h + 14}" '
                 f'text-anchor="middle">{tick}</text>')
  parts.append(f'<text class="axis" x="{left + plot_w / 2:.0f}" '
               f'y="{height - 4}" text-anchor="middle">epoch</text>')
  if y_label:
    parts.append(f'<text class="axis" transform="translate(10 '
                 f'{top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">'
                 f'{escape(y_label)}</text>')
  parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{plot_w}" '
               f'height="{plot_h}"/>')
  for index, (label, xs, ys) in enumerate(series):
    colour = PALETTE[index % len(PALETTE)]
    points = [(px(x), py(y)) for x, y in zip(xs, ys)
              if y is not None and math.isfinite(y)]
    if len(points) > 1:
      path = ' '.join(f'{x:.1f},{y:.1f}' for x, y in points)
      parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                   f'points="{path}"/>')
    for (x, y), value in zip(points, [v for v in ys if v is not None]):
      parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                   f'<title>{escape(label)}: {value:.4f}</title></circle>')
    legend_x = left + 62 + index * 76  # beside the title, above the plot
    parts.append(f'<rect x="{legend_x}" y="10" width="10" height="3" '
                 f'fill="{colour}"/><text class="legend" x="{legend_x + 14}" '
                 f'y="15">{escape(label)}</text>')
  parts.append('</svg>')
  return ''.join(parts)


def _blend(fraction: float) -> str:
  """White to dark blue as `fraction` goes from 0 to 1."""
  fraction = max(0.0, min(1.0, fraction))
  low, high = (255, 255, 255), (23, 73, 140)
  return '#' + ''.join(f'{round(a + (b - a) * fraction):02x}'
                       for a, b in zip(low, high))


def heat_map(matrix: list[list[float]], labels: list[str], title: str,
             cell: int = 34) -> str:
  """A labelled confusion matrix: rows are true classes, columns predicted.

  Colour is the share of the row (the true class), so classes with few test
  images read as clearly as the others; the cell shows the count.
  """
  margin_left, margin_top = 86, 96
  n = len(labels)
  width, height = margin_left + n * cell + 8, margin_top + n * cell + 8
  parts = [f'<svg class="heatmap" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="{escape(title)}">',
           f'<text class="title" x="0" y="14">{escape(title)}</text>',
           f'<text class="axis" x="{margin_left + n * cell / 2:.0f}" y="32" '
           'text-anchor="middle">predicted class</text>',
           f'<text class="axis" transform="translate(10 '
           f'{margin_top + n * cell / 2:.0f}) rotate(-90)" '
           'text-anchor="middle">true class</text>']
  for i, label in enumerate(labels):
    x = margin_left + i * cell + cell / 2
    parts.append(f'<text class="label" transform="translate({x + 4:.0f} '
                 f'{margin_top - 6}) rotate(-55)">{escape(label)}</text>')
    parts.append(f'<text class="label" x="{margin_left - 6}" '
                 f'y="{margin_top + i * cell + cell / 2 + 4:.0f}" '
                 f'text-anchor="end">{escape(label)}</text>')
  for i, row in enumerate(matrix):
    total = sum(row) or 1.0
    for j, count in enumerate(row):
      share = count / total
      x, y = margin_left + j * cell, margin_top + i * cell
      text_class = 'dark' if share > 0.45 else ('zero' if not count else 'count')
      stroke = ' stroke="#2e8b57" stroke-width="2"' if i == j else ''
      parts.append(
          f'<g><rect x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
          f'fill="{_blend(share)}"{stroke}/><text class="{text_class}" '
          f'x="{x + cell / 2 - 0.5:.1f}" y="{y + cell / 2 + 4:.1f}" '
          f'text-anchor="middle">{count:.0f}</text><title>true '
          f'{escape(labels[i])}, predicted {escape(labels[j])}: {count:.0f} '
          f'({share:.0%} of {escape(labels[i])})</title></g>')
  parts.append('</svg>')
  return ''.join(parts)
