"""Parsing locust's CSVs and the raw samples, and building its command line (pure)."""

from __future__ import annotations

import pytest

from knative_lambda.bench import locust_runner as lr
from knative_lambda.errors import ConfigError

STATS = """\
Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%
POST,invoke,100,2,1.5,2.0,0.5,9.0,19.0,50.0,1.0,2,2,2,3,3,4,5,6,9,9,9
,Aggregated,100,2,1.5,2.0,0.5,9.0,19.0,50.0,1.0,2,2,2,3,3,4,5,6,9,9,9
"""

HISTORY = """\
Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size
1000,0,,Aggregated,0.000000,0.000000,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0
1001,3,POST,invoke,10.0,0.0,1,1,1,1,1,1,1,1,1,1,1,10,0,1,1,1,1,19
1001,3,,Aggregated,10.000000,0.000000,1,1,1,1,1,1,1,1,1,1,1,10,0,1,1,1,1,19
1002,5,,Aggregated,20.000000,1.000000,1,1,1,1,1,1,1,1,1,1,1,30,1,1,1,1,1,19
"""

SAMPLES = """\
100.010,0.010000,1,invoke
100.500,0.020000,1,invoke
101.200,0.030000,0,invoke,HTTP 500, said the server
101.900,0.005000,1,invoke
102.400,0.004000,1,invoke
garbage line
102.5,0.1,
"""


def test_parse_stats() -> None:
    stats = lr.parse_stats_csv(STATS)
    assert stats["Request Count"] == 100 and stats["Failure Count"] == 2
    assert stats["95%"] == 4 and stats["Requests/s"] == 50.0
    assert lr.parse_stats_csv("") == {}


def test_parse_history() -> None:
    series = lr.parse_history_csv(HISTORY)
    assert series["users"].t == [0.0, 1.0, 2.0]
    assert series["users"].v == [0.0, 3.0, 5.0]
    assert series["locust_rps"].v == [0.0, 10.0, 20.0]
    assert series["locust_failures_per_s"].v == [0.0, 0.0, 1.0]
    assert lr.parse_history_csv("") == {}


def test_parse_samples() -> None:
    raw = lr.parse_samples(SAMPLES)
    assert raw.samples == [0.01, 0.02, 0.005, 0.004]
    assert raw.errors == 1
    assert raw.error_counts == {"HTTP 500, said the server": 1}
    assert raw.start == pytest.approx(100.0)
    assert raw.end == pytest.approx(102.4)
    assert raw.window == pytest.approx(2.4)
    assert lr.parse_samples("").window is None


def test_rate_series_drops_the_partial_last_second() -> None:
    s = lr.rate_series(SAMPLES)
    # successes end at 100.01, 100.5 | 101.9 | 102.4 (partial): bins from the first end
    assert s.t == [0.0, 1.0]
    assert s.v == [2.0, 1.0]
    assert lr.rate_series("").t == []


def test_parse_failures() -> None:
    text = "Method,Name,Error,Occurrences\nPOST,invoke,HTTP 500,3\n"
    assert lr.parse_failures_csv(text) == [
        {"Method": "POST", "Name": "invoke", "Error": "HTTP 500", "Occurrences": "3"}]


def test_build_command() -> None:
    cmd = lr.build_command("f.py", "http://127.0.0.1:1", "/tmp/x", users=4, run_time_s=2.5,
                           python="py")
    assert cmd[:6] == ["py", "-m", "locust", "-f", "f.py", "--headless"]
    assert cmd[cmd.index("-t") + 1] == "3s"
    assert cmd[cmd.index("-u") + 1] == "4" and cmd[cmd.index("-r") + 1] == "4"
    assert cmd[cmd.index("--csv") + 1] == "/tmp/x"
    shaped = lr.build_command("f.py", "h", "p", run_time_s=10, python="py")
    assert "-u" not in shaped  # a LoadTestShape drives


@pytest.mark.parametrize("kwargs", [{"run_time_s": 0}, {"run_time_s": 1, "users": 0}])
def test_build_command_refuses_nonsense(kwargs) -> None:
    with pytest.raises(ConfigError):
        lr.build_command("f.py", "h", "p", **kwargs)


def test_locustfiles_exist() -> None:
    for path in lr.LOCUSTFILES.values():
        assert path.is_file()


@pytest.mark.parametrize("url, host, path", [
    ("http://127.0.0.1:8080/default/fn", "http://127.0.0.1:8080", "/default/fn"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080", "/"),
    ("https://h/x/?a=1", "https://h", "/x/?a=1"),
])
def test_split_url(url: str, host: str, path: str) -> None:
    assert lr.split_url(url) == (host, path)


@pytest.mark.parametrize("url", ["127.0.0.1:8080/x", "ftp://h/x", "http:///x"])
def test_split_url_refuses_non_http(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        lr.split_url(url)


def test_run_http_load_needs_users_or_profile(tmp_path) -> None:
    with pytest.raises(ConfigError, match="either users"):
        lr.run_http_load("http://127.0.0.1:1/", tmp_path, run_time_s=1)
    with pytest.raises(ConfigError, match="either users"):
        lr.run_http_load("http://127.0.0.1:1/", tmp_path, run_time_s=1, users=1, profile="spike")
