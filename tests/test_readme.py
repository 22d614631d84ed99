"""The README's Python API example runs as pasted."""

import re
import subprocess
import sys
from pathlib import Path


def test_the_python_api_example_runs_as_pasted(tmp_path):
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"## Python API\n+```python\n(.*?)```", readme, re.S).group(1)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
