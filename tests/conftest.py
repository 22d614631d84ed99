"""Shared fixtures: a toy model family small enough to enumerate and to run in milliseconds."""

import pytest

from glit import Family, SearchSpace


def pytest_configure(config):
    # One intra-op thread per test process. The tests run on tiny tensors, where thread start-up costs more than it
    # saves, and under `pytest -n 2` on 2 cores extra threads oversubscribe the CPU (a forward pass then takes
    # hundreds of times longer).
    import torch

    torch.set_num_threads(1)


@pytest.fixture
def toy_family() -> Family:
    """16 px images, 4 px patches (16 + 1 tokens), D 24, H 3 (8 channels per head), 2 blocks, 5 classes."""
    return Family(img_size=16, patch_size=4, embed_dim=24, num_heads=3, depth=2, num_classes=5)


@pytest.fixture
def toy_space(toy_family) -> SearchSpace:
    """Every gene free, with the paper's ratios and small kernels."""
    return SearchSpace.uniform(toy_family, num_global_heads=(0, 1, 2, 3), qkv_ratio=(0.5, 1, 2),
                               mlp_ratio=(2, 4, 6), conv_ratio=(1, 2, 4), kernel_size=(3, 5, 7))


def pytest_terminal_summary(terminalreporter):
    """One line per browser test at the end of the run, so that CI's log shows whether the report was checked in
    Chromium (passed), could not be (skipped, with the reason) or failed."""
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            browser = "test_report_browser" in getattr(report, "nodeid", "")
            if browser and (report.when == "call" or outcome != "passed"):
                skipped = outcome == "skipped" and isinstance(report.longrepr, tuple)
                reason = f" ({report.longrepr[2]})" if skipped else ""
                terminalreporter.write_line(f"browser test {outcome}: {report.nodeid}{reason}")
