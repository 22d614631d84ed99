"""The report in a real browser (issue 15): headless Chromium lays out ``report.html`` at a desktop width (1400 px)
and a phone's (390 px). A copy of the page gets a probe script that measures the layout and writes it into the
DOM, which ``--dump-dom`` returns; the report itself has no script. Skipped, with the reason, where Chromium is not
installed (Debian: ``apt-get install chromium``), except under ``CI=true``, where a missing browser is a failure:
``.ci/run`` installs it, and a CI run must never pass without this test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from glit.report import write_report
from glit.verdict import compare
from test_report import _write, make_run

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
IN_CI = os.environ.get("CI") == "true"
pytestmark = pytest.mark.skipif(CHROMIUM is None and not IN_CI, reason="headless Chromium is not installed "
                                                                       "(apt-get install chromium)")
# Chromium as root in a container: no sandbox, no GPU, and none of its background connections (this machine's
# network refuses them, and the page must load nothing anyway)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run")

PROBE = r"""<script>
const box = e => e.getBoundingClientRect();
const over = e => e.scrollWidth > e.clientWidth + 1;
const page = document.documentElement;
const main = document.querySelector('main');
const result = {
  page_overflow: page.scrollWidth > window.innerWidth + 1,
  headline_scrolls: over(document.querySelector('table.headline').parentElement),
  headline_top1_visible: (() => { const c = document.querySelector('table.headline tbody td:nth-child(2)');
    const s = box(c.closest('.scroll')); return box(c).right <= s.right + 1 && /\d+\.\d\d/.test(c.textContent); })(),
  clipped_headings: [...document.querySelectorAll('h1, h2, h3')].filter(over).map(e => e.textContent),
  wide_images: [...document.querySelectorAll('img')].filter(i => box(i).width > box(main).width + 1).length,
  images: document.querySelectorAll('img').length,
  requests: performance.getEntriesByType('resource').map(r => r.name).filter(n => !n.startsWith('data:')),
  links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
};
const out = document.createElement('pre'); out.id = 'probe'; out.textContent = JSON.stringify(result);
document.body.appendChild(out);
</script>"""


def layout(page_path, width: int) -> dict:
    assert CHROMIUM is not None, "CI=true, but headless Chromium is not installed (.ci/run installs it)"
    probe = page_path.with_name(f"probe-{width}.html")
    probe.write_text(page_path.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    profile = page_path.with_name(f"chromium-profile-{width}")
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},900",
                           "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r"<pre id=\"probe\">(.*?)</pre>", done.stdout, re.S)
    assert found, done.stderr[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = make_run(tmp_path_factory.mktemp("browser"), {"searched": 95.83, "baseline": 96.11, "random": 96.94})
    summary = json.loads((run / "summary.json").read_text())
    summary["comparisons"] = {"vs_baseline": compare(2, 3, 360), "vs_random": compare(1, 5, 360)}
    _write(run / "summary.json", summary)
    return write_report(run)


@pytest.mark.parametrize("width", [1400, 390])
def test_the_report_fits_the_screen_and_loads_nothing(report, width):
    seen = layout(report, width)
    assert not seen["page_overflow"], "the page scrolls sideways"
    assert seen["headline_top1_visible"], "test top-1 of the headline table is out of view"
    if width == 1400:
        assert not seen["headline_scrolls"], "the headline table needs a scrollbar at 1400 px"
    assert seen["clipped_headings"] == []
    assert seen["images"] >= 4 and seen["wide_images"] == 0
    assert seen["requests"] == [], "the page asked for something outside the file"
    assert all(not re.match(r"[a-z]+://", href) for href in seen["links"]), "links are relative"
