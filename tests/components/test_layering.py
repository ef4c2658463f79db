"""`components/` stands alone: no module of it imports `pipeline`.

Every import statement of every module under components/ is read (module
level and inside functions), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
import pathlib

COMPONENTS = pathlib.Path(__file__).resolve().parents[2] / 'components'


def _imports(path: pathlib.Path) -> set[str]:
  names = set()
  for node in ast.walk(ast.parse(path.read_text(), str(path))):
    if isinstance(node, ast.Import):
      names.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and not node.level:
      names.add(node.module or '')
  return names


def test_no_component_module_imports_pipeline():
  files = sorted(COMPONENTS.rglob('*.py'))
  assert len(files) > 20  # the scan sees the package
  offenders = {str(f.relative_to(COMPONENTS.parent)): sorted(
      n for n in _imports(f) if n.split('.')[0] == 'pipeline') for f in files}
  assert {f: n for f, n in offenders.items() if n} == {}


def test_the_scan_would_see_an_offender(tmp_path):
  module = tmp_path / 'm.py'
  module.write_text('def f():\n  from pipeline.config import X\n')
  assert 'pipeline.config' in _imports(module)
