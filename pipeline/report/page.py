"""The HTML page around the report's sections: inline CSS, a Content Security
Policy that forbids any network access, and small formatting helpers.

Called by `pipeline/report/sections.py` (the helpers) and by
`pipeline/report/__init__.py` (`page`).
"""

from __future__ import annotations

import base64
import math
from html import escape

# Nothing may be fetched: styles inline, images as data: URIs, no script.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

CSS = """
:root { --ink: #1d2330; --muted: #5b6578; --line: #d9dee7; --bg: #f5f7fa;
  --good: #2e8b57; --bad: #b03a48; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: var(--bg); }
header { background: #17243b; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; font-weight: 600; }
header .meta { color: #c5cee0; font-size: 13px; }
header code { background: none; color: #c5cee0; padding: 0; }
main { max-width: 1280px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 20px; margin: 18px 0; }
h2 { font-size: 17px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 4px 0 8px; }
.note { color: var(--muted); font-size: 13px; }
.cols { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr));
  gap: 18px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 12px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line);
  text-align: right; vertical-align: top; }
th { background: #eef1f6; font-weight: 600; font-size: 13px; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
tr.chosen td { background: #eef7f1; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 9px;
  font-size: 12px; font-weight: 600; color: #fff; background: var(--accent); }
.pass { color: var(--good); font-weight: 600; }
.fail { color: var(--bad); font-weight: 600; }
.decision .headline { font-size: 20px; margin: 2px 0 10px; }
.decision.none .headline { color: var(--bad); }
code, pre { font: 12.5px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; }
code { background: #eef1f6; padding: 1px 4px; border-radius: 3px;
  overflow-wrap: anywhere; }
pre { background: #17243b; color: #e8edf6; padding: 12px 14px;
  border-radius: 6px; overflow-x: auto; }
.bar { display: inline-block; height: 8px; background: var(--accent);
  border-radius: 2px; vertical-align: middle; margin-left: 6px; }
svg text { font-family: inherit; fill: var(--ink); }
svg .title { font-size: 13px; font-weight: 600; }
svg .tick, svg .legend, svg .count { font-size: 11px; }
svg .axis { font-size: 11px; fill: var(--muted); }
svg .label { font-size: 12px; }
svg .zero { font-size: 11px; fill: #b9c0cc; }
svg .dark { font-size: 11px; fill: #fff; font-weight: 600; }
svg .grid { stroke: #e6e9ef; } svg .frame { fill: none; stroke: #c3cad6; }
.charts { display: flex; flex-wrap: wrap; gap: 10px; }
.grid-images { display: grid; grid-template-columns: repeat(auto-fill, 104px);
  gap: 10px; }
figure { margin: 0; font-size: 11.5px; text-align: center; }
figure img { width: 64px; height: 64px; image-rendering: pixelated;
  border: 1px solid var(--line); }
figure .true { color: var(--good); } figure .pred { color: var(--bad); }
ul.anomalies li { color: var(--bad); }
"""


def esc(value) -> str:
  return escape(str(value), quote=True)


def pct(value: float | None, digits: int = 1) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '—'
  return f'{100.0 * value:.{digits}f}%'


def num(value: float | None, digits: int = 4) -> str:
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '—'
  return f'{value:.{digits}f}'


def human_bytes(size: int | None) -> str:
  if size is None:
    return '—'
  for unit in ('B', 'KiB', 'MiB', 'GiB'):
    if size < 1024 or unit == 'GiB':
      return f'{size:.0f}\u00a0{unit}' if unit == 'B' else (
          f'{size:.1f}\u00a0{unit}')
    size /= 1024.0
  return '—'


def human_seconds(seconds: float | None) -> str:
  if seconds is None:
    return '—'
  if seconds < 90:
    return f'{seconds:.1f}\u00a0s'
  minutes, rest = divmod(int(round(seconds)), 60)
  if minutes < 90:
    return f'{minutes}\u00a0min {rest:02d}\u00a0s'
  return f'{minutes // 60}\u00a0h {minutes % 60:02d}\u00a0min'


def image_uri(data: bytes) -> str:
  """A data: URI for encoded image bytes (PNG, JPEG, GIF or BMP)."""
  kind = ('png' if data[:8] == b'\x89PNG\r\n\x1a\n' else
          'jpeg' if data[:3] == b'\xff\xd8\xff' else
          'gif' if data[:4] == b'GIF8' else 'bmp')
  return f'data:image/{kind};base64,{base64.b64encode(data).decode("ascii")}'


def page(title: str, header: str, body: str) -> str:
  """The whole HTML document."""
  return (
      '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
      f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
      '<meta name="viewport" content="width=device-width, initial-scale=1">'
      f'<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>'
      f'<header>{header}</header>\n<main>{body}</main></body></html>\n')
