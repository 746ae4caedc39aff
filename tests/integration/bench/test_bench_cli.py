"""kl gate / report / bench as real processes: exit codes, outputs, Ctrl-C keeping results."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from knative_lambda.bench.results import save
from knative_lambda.bench.synthetic import synthetic_run

REPO = Path(__file__).resolve().parents[3]
LOCAL = REPO / "benchmarks" / "budgets" / "local.yaml"


def kl(*args: str, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "knative_lambda", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def kl_in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                  *args: str) -> tuple[int, str, str]:
    """The real ``kl`` entry point, in this process (no interpreter start-up per call)."""
    from knative_lambda.cli import main

    monkeypatch.setattr(sys, "argv", ["kl", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("runs")
    paths = {"good": d / "good.json", "slow": d / "slow.json"}
    save(synthetic_run(1), paths["good"])
    save(synthetic_run(3, slowdown=8), paths["slow"])
    return paths


def test_gate_passes(runs, tmp_path: Path) -> None:
    out = kl("gate", str(runs["good"]), "--budgets", str(LOCAL),
             "--junit", str(tmp_path / "junit.xml"), "--json", str(tmp_path / "gate.json"))
    assert out.returncode == 0, out.stderr
    assert "gate PASS" in out.stdout
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.get("failures") == "0" and int(root.get("tests")) > 10
    assert json.loads((tmp_path / "gate.json").read_text())["passed"] is True


def test_gate_fails_on_a_breach(runs, tmp_path: Path) -> None:
    out = kl("gate", str(runs["slow"]), "--budgets", str(LOCAL), "--junit", str(tmp_path / "j.xml"))
    assert out.returncode == 1
    assert "FAIL" in out.stdout and "gate FAIL" in out.stdout
    assert int(ET.parse(tmp_path / "j.xml").getroot().get("failures")) >= 1


@pytest.mark.parametrize("budget, message", [
    ("thresholds:\n  cold_start: [p50 < fast]\n", "b.yaml:2: cannot parse threshold"),
    ("thresholds:\n  cold_start: [p50 < 5]\n", "cold_start is measured in seconds"),
])
def test_gate_bad_budgets_exit_2_in_one_line(runs, tmp_path: Path, budget: str, message: str,
                                             capsys, monkeypatch) -> None:
    (tmp_path / "b.yaml").write_text(budget)
    code, _, err = kl_in_process(capsys, monkeypatch, "gate", str(runs["good"]),
                                 "--budgets", str(tmp_path / "b.yaml"))
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_gate_bad_results_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "r.json").write_text("{")
    code, _, err = kl_in_process(capsys, monkeypatch, "gate", str(tmp_path / "r.json"),
                                 "--budgets", str(LOCAL))
    assert code == 2 and "not valid JSON" in err


def test_report_command(runs, tmp_path: Path, capsys, monkeypatch) -> None:
    chaos = tmp_path / "chaos.json"
    chaos.write_text(json.dumps({"experiment": "trigger-purge", "events_lost": 17, "deviated": True}))
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"passed": False, "counts": {"fail": 1}, "budgets": "b.yaml", "checks": [
        {"measurement": "cold_start", "budget": "p50 < 1ms", "verdict": "fail",
         "measured_text": "12 ms", "detail": ""}]}))
    code, out, err = kl_in_process(capsys, monkeypatch, "report", str(runs["good"]), "--gate",
                                   str(gate), "--chaos", str(chaos), "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert out.strip() == str(tmp_path / "rep" / "index.html")
    doc = (tmp_path / "rep" / "index.html").read_text()
    assert "gate FAIL" in doc and "p50 &lt; 1ms" in doc and "trigger-purge" in doc


def test_report_bad_gate_file_exit_2(runs, tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "gate.json").write_text("{}")
    code, _, err = kl_in_process(capsys, monkeypatch, "report", str(runs["good"]), "--gate",
                                 str(tmp_path / "gate.json"), "--out", str(tmp_path / "rep"))
    assert code == 2 and "not a gate result" in err


def test_bench_unknown_suite_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    code, _, err = kl_in_process(capsys, monkeypatch, "bench", "no-such-suite",
                                 "--out", str(tmp_path / "r.json"))
    assert code == 2 and "no suite 'no-such-suite'" in err


def test_bench_bad_suite_file_exit_2(tmp_path: Path, capsys, monkeypatch) -> None:
    (tmp_path / "s.yaml").write_text("benchmarks:\n  - {name: a, kind: warp}\n")
    code, _, err = kl_in_process(capsys, monkeypatch, "bench", str(tmp_path / "s.yaml"),
                                 "--out", str(tmp_path / "r.json"))
    assert code == 2 and "s.yaml:2: benchmark 'a': unknown kind 'warp'" in err


SLOW_RUN = """
import sys, time
from pathlib import Path
from knative_lambda.bench import runner
from knative_lambda.bench.suite import parse_suite

def slow(target, params, rec):
    for i in range(600):  # bounded: at most 60 s
        rec.sample(0.001 * (i + 1))
        if i == 3:
            print("ready", flush=True)
        time.sleep(0.1)

suite = parse_suite("benchmarks:\\n  - {name: one, kind: build}\\n  - {name: two, kind: events}\\n", "s.yaml")
record = runner.run_suite(suite, None, Path(sys.argv[1]), {"target": "test"},
                          registry={"build": slow, "events": slow})
sys.exit(130 if record.status == "interrupted" else 0)
"""


def test_ctrl_c_keeps_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_RUN, str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    data = json.loads(out.read_text())
    assert data["status"] == "interrupted"
    [bench] = data["benchmarks"]
    assert bench["status"] == "interrupted"
    assert len(bench["measurements"]["one"]["samples"]) >= 4
    assert data["metadata"]["not_run"] == ["two"]
    assert "one: interrupted" in stderr  # the progress line on stderr


def test_gate_help_mentions_noisy(capsys, monkeypatch) -> None:
    code, out, _ = kl_in_process(capsys, monkeypatch, "gate", "--help")
    assert code in (0, None) and "NOISY" in out
