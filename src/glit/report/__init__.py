"""The report of ``glit run``: one self-contained HTML page with the result table, the search, the winning
architecture, the training curves, the config and the commands that reproduce the run.

``write_report(run_dir)`` reads a ``glit run`` output folder and writes ``run_dir/report.html``.
"""

from glit.report.html import write_report

__all__ = ["write_report"]
