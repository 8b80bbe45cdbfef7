"""The benchmark suite's --quick mode runs end to end and writes valid results (no thresholds).

CI runs it so the suite does not rot; the figures themselves are not asserted.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_synthetic_vectors_are_unit_and_clustered():
    from benchmarks.run import synthetic_vectors

    x = synthetic_vectors(3000, dim=64, seed=1)
    assert x.shape == (3000, 64) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sims = x[:50] @ x.T
    np.fill_diagonal(sims[:, :50], -1)
    best = np.sort(sims, axis=1)[:, -1]
    assert np.median(best) > 0.5  # neighbourhoods exist, unlike uniform random vectors (~0.3 at d=64)
    assert np.array_equal(x, synthetic_vectors(3000, dim=64, seed=1))


def test_markdown_and_plot_from_a_minimal_result(tmp_path):
    from benchmarks.run import markdown, plot

    res = {
        "mode": "quick",
        "machine": "m",
        "started": "now",
        "seconds": 1.0,
        "ann": {
            "data": "d",
            "queries": 2,
            "rows": [
                {
                    "n": 100,
                    "type": "flat",
                    "p50_ms": 0.1,
                    "p95_ms": 0.2,
                    "recall@10": 1.0,
                    "bytes_per_chunk": 1544.0,
                    "build_s": 0.0,
                },
                {"n": 1000, "type": "hnsw", "skipped": "too slow"},
            ],
        },
    }
    text = markdown(res)
    assert "| 100 | flat | 0.1 | 0.2 | 1.0 | 1544 | 0.0 | exact |" in text and "skipped: too slow" in text
    assert plot(res, tmp_path / "p.png") and (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_section_is_refused(capsys):
    from benchmarks.run import main

    with pytest.raises(SystemExit):
        main(["--sections", "ann,warp"])
    assert "unknown section 'warp'" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_suite_runs_and_writes_results(tmp_path):
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert res["mode"] == "quick" and set(res["sections"]) == {"ingest", "embed", "quality", "ann", "e2e", "answer"}
    ing = res["ingest"]
    assert (
        ing["chunks"] > 0
        and ing["ratio_wall"] > 0
        and set(ing["stages_s"]) >= {"load", "chunk", "embed", "faiss", "sqlite", "other"}
    )
    assert res["embed"]["backends"]["torch"]["speedup_vs_torch"] == 1.0
    assert {r["type"] for r in res["ann"]["rows"]} >= {"flat", "hnsw", "ivf"}
    assert all(0.0 <= r["recall@10"] <= 1.0 and r["p50_ms"] > 0 for r in res["ann"]["rows"] if "p50_ms" in r)
    assert res["e2e"]["backends"]["torch"]["p50_ms"] > 0
    # Without ../shared the quality section is skipped (and says why) instead of measured.
    assert "skipped" in res["quality"] or res["quality"]["backends"]["torch"]["hit@5"] is not None
    assert any("ttft_s" in r for r in res["answer"]["backends"].values())
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "## Ingestion" in md and "## Index types" in md and "## Answer latency" in md
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
