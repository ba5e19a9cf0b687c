"""`make bench` still works: a tiny run (small mailboxes, three rounds). Not a timed test."""

import json
import os
import subprocess
import sys
from pathlib import Path

from devtools.test_database import POSTGRES_URL

BASE_DIR = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_and_reports_every_figure(tmp_path, db):
    figures = tmp_path / "bench.json"
    database = POSTGRES_URL.rsplit("/", 1)[0] + "/clientmanager_bench_check"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.bench",
            "--quick",
            "--json",
            str(figures),
            "--database-url",
            database,
        ],
        cwd=BASE_DIR,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "cold open / bare script" in result.stdout

    results = json.loads(figures.read_text())
    for case in [
        "bare script 1k", "webmail cold 1k", "webmail warm 1k", "bare script 100k",
        "webmail cold 100k", "webmail warm 100k", "message (warm)", "settings", "trivial view",
        "bare smtplib 1 MB", "webmail send 1 MB",
    ]:  # fmt: skip
        assert results["timings"][case]["runs"] == 3
        assert results["timings"][case]["median_ms"] > 0
    assert results["concurrent"]["errors"] == 0
    assert results["errors_in_log"] == 0
    assert results["worker_peak_memory_mb"] > 0
    # The command counts are behaviour, not timing: a warm page view reuses the connection.
    assert results["imap_commands"]["warm1k"] <= 3
    assert results["imap_commands"]["cold1k"] <= 4  # LOGIN, SELECT, FETCH, LIST-STATUS
    assert set(results["targets"]) >= {"cold open / bare script", "concurrent errors"}
    assert results["ratios"]["send 1 MB / bare smtplib"] > 0
