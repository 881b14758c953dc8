"""Policies that keep outages short and bounded: the publisher's circuit, the supervisor's backoff."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from infra.liveness import Liveness, probe_live
from infra.proc import free_port
from infra.supervise import Backoff
from shared.errors import InfrastructureUnavailable
from shared.kafka import KafkaPublisher, Outbound


async def test_while_the_broker_fails_its_checks_submissions_are_refused_at_once() -> None:
    publisher = KafkaPublisher("127.0.0.1:1", timeout=30)
    publisher._reachable = False
    publisher._failing_since = time.monotonic()
    started = time.monotonic()
    outcomes = await publisher.publish_many([Outbound("t", "k", b"v"), Outbound("t", "k2", b"v")])
    assert time.monotonic() - started < 0.5
    assert all(isinstance(o, InfrastructureUnavailable) for o in outcomes)
    await publisher.stop()


async def test_a_producer_is_replaced_only_after_failing_that_long_with_the_broker_back() -> None:
    publisher = KafkaPublisher("127.0.0.1:1", timeout=1, recreate_after=10)
    now = time.monotonic()
    assert not publisher._producer_stuck()  # never failed
    publisher._failing_since = now - 60
    publisher._reachable = False
    assert not publisher._producer_stuck()  # broker away: a new producer would not help
    publisher._reachable, publisher._reachable_since = True, now - 1
    assert not publisher._producer_stuck()  # broker just back: give the producer its chance
    publisher._reachable_since = now - 11
    assert publisher._producer_stuck()
    await publisher.stop()


def test_restarts_back_off_doubling_up_to_a_cap_and_start_over_after_a_stable_run() -> None:
    backoff = Backoff(initial=1, cap=8, stable_after=60)
    delays = []
    now = 0.0
    for _ in range(6):
        delays.append(backoff.died(now))
        now += delays[-1]
        backoff.restarted(now)
        now += 1  # crashes again a second later
    assert delays == [1, 2, 4, 8, 8, 8]
    now += 120  # then runs for two minutes before the next crash
    assert backoff.died(now) == 1


def test_a_service_counts_as_hung_after_that_many_failed_liveness_probes_in_a_row() -> None:
    liveness = Liveness(threshold=3)
    assert [liveness.record(outcome) for outcome in (False, False, True, False, False)] == [False] * 5
    assert not liveness.record(None)  # refused: starting or stopping, neither failure nor success
    assert liveness.record(False)  # the third failure since the last success


def test_a_liveness_probe_fails_on_a_port_that_accepts_and_never_answers_and_ignores_a_closed_one() -> None:
    with socket.socket() as silent:  # a stopped process: the kernel accepts connections, nobody answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        assert probe_live(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5) is False
        assert time.monotonic() - started < 3
    assert probe_live(f"http://127.0.0.1:{free_port()}", timeout=0.5) is None


def test_the_container_healthcheck_stops_its_service_after_that_many_failures_in_a_row(tmp_path: Path) -> None:
    service = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    count = tmp_path / "failures"
    try:
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            check = [sys.executable, "-m", "infra.liveness", "--port", str(silent.getsockname()[1]), "--timeout",
                     "0.3", "--failures", "3", "--pid", str(service.pid), "--count-file", str(count)]
            codes = []
            for _ in range(2):
                codes.append(subprocess.run(check, capture_output=True, check=False).returncode)
                assert service.poll() is None and count.read_text() == str(len(codes))
            codes.append(subprocess.run(check, capture_output=True, check=False).returncode)
        assert codes == [1, 1, 1]
        assert service.wait(timeout=10) == -signal.SIGTERM
        assert count.read_text() == "0"
    finally:
        service.kill()
        service.wait()
