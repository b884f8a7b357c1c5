"""Metrics: the textfile parsed by prometheus_client, and a push to a real Pushgateway."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spotify_audience_sync.errors import OutputError
from spotify_audience_sync.sync.facts import AudienceFacts, RunFacts
from spotify_audience_sync.sync.metrics import push_metrics, write_metrics_file

PUSHGATEWAY = "prometheus-pushgateway"


def _facts(exit_code: int, finished: float, name: str = "CRM VIP") -> RunFacts:
    audience = AudienceFacts(
        name=name,
        id="5a1d8c9e-0000-4000-8000-00000000aaaa",
        action="replaced" if exit_code == 0 else None,
        exit_code=exit_code,
        rows_read=1200,
        identifiers=1100 if exit_code == 0 else 0,
        rejected={"malformed": 7, "invalid_phone": 3},
        size_min=800 if exit_code == 0 else None,
        size_max=900 if exit_code == 0 else None,
        seconds=2.5,
    )
    return RunFacts("run", "sync", exit_code, finished, (audience,))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_textfile_holds_every_gauge(tmp_path: Path) -> None:
    path = tmp_path / "sas.prom"
    write_metrics_file(path, _facts(0, 1000.0))
    got = _samples(path.read_text())
    vip = (("audience", "CRM VIP"),)
    assert got[("spotify_audience_sync_last_run_exit_code", vip)] == 0
    assert got[("spotify_audience_sync_last_run_timestamp_seconds", vip)] == 1000.0
    assert got[("spotify_audience_sync_last_success_timestamp_seconds", vip)] == 1000.0
    assert got[("spotify_audience_sync_rows_read", vip)] == 1200
    assert got[("spotify_audience_sync_identifiers_uploaded", vip)] == 1100
    rejected = "spotify_audience_sync_identifiers_rejected"
    assert got[(rejected, (("audience", "CRM VIP"), ("reason", "malformed")))] == 7
    assert got[(rejected, (("audience", "CRM VIP"), ("reason", "invalid_phone")))] == 3
    assert got[("spotify_audience_sync_duration_seconds", vip)] == 2.5
    assert got[("spotify_audience_sync_audience_size_min", vip)] == 800
    assert got[("spotify_audience_sync_audience_size_max", vip)] == 900
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["sas.prom"]  # no temp file left


def test_a_failed_run_keeps_the_last_success_time(tmp_path: Path) -> None:
    path = tmp_path / "sas.prom"
    write_metrics_file(path, _facts(0, 1000.0))
    write_metrics_file(path, _facts(75, 2000.0))
    got = _samples(path.read_text())
    vip = (("audience", "CRM VIP"),)
    assert got[("spotify_audience_sync_last_run_exit_code", vip)] == 75
    assert got[("spotify_audience_sync_last_run_timestamp_seconds", vip)] == 2000.0
    assert got[("spotify_audience_sync_last_success_timestamp_seconds", vip)] == 1000.0


def test_unwritable_metrics_file_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as caught:
        write_metrics_file(tmp_path / "missing" / "sas.prom", _facts(0, 1.0))
    assert "--metrics-file" in str(caught.value)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Pushgateway (Debian's prometheus-pushgateway, which .ci/run installs)."""
    binary = shutil.which(PUSHGATEWAY) or "/usr/bin/prometheus-pushgateway"
    if not Path(binary).exists():
        pytest.fail(
            "prometheus-pushgateway is not installed: apt-get install prometheus-pushgateway"
        )
    port = _free_port()
    folder = tmp_path_factory.mktemp("pushgateway")
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}",
         f"--persistence.file={folder / 'metrics'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx2.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("the Pushgateway did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _scraped(url: str, audience: str) -> dict[str, float]:
    text = httpx2.get(f"{url}/metrics", timeout=5).text
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("audience") == audience
        and s.labels.get("job") == "spotify_audience_sync"
        and "reason" not in s.labels
    }


def test_push_groups_by_audience_and_keeps_last_success(pushgateway: str) -> None:
    push_metrics(pushgateway, _facts(0, 1000.0, name="Pushed A"))
    push_metrics(pushgateway, _facts(0, 1500.0, name="Pushed B"))
    push_metrics(pushgateway, _facts(69, 2000.0, name="Pushed A"))
    a, b = _scraped(pushgateway, "Pushed A"), _scraped(pushgateway, "Pushed B")
    assert a["spotify_audience_sync_last_run_exit_code"] == 69
    assert a["spotify_audience_sync_last_run_timestamp_seconds"] == 2000.0
    assert a["spotify_audience_sync_last_success_timestamp_seconds"] == 1000.0
    assert b["spotify_audience_sync_last_success_timestamp_seconds"] == 1500.0
    assert b["spotify_audience_sync_identifiers_uploaded"] == 1100


def test_push_to_nothing_is_transient() -> None:
    from spotify_audience_sync.errors import TransientError

    with pytest.raises(TransientError) as caught:
        push_metrics(f"http://127.0.0.1:{_free_port()}", _facts(0, 1.0), timeout=2)
    assert caught.value.exit_code == 75
