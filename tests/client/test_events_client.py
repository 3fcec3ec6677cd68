"""Issue 22: ``Registry.events`` and ``modelreg events``, on both backends.

Embedded, a wait is woken by another process's commit too (a ``modelreg`` CLI run on the same
folder): the iterator, waiting 60 s for its first event, yields it, which it could not had it
missed the change (it would end empty).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import modelreg
from modelreg import Event
from modelreg.errors import InvalidInput
from server_process import MODELREG, run_cli


def test_events_iterates_every_event_in_order(reg: modelreg.Registry, files: Path) -> None:
    reg.register("fraud", files / "model.pkl", capture=False)
    reg.set_alias("fraud", "champion", 1, reason="first")
    reg.create_model("churn")
    seen = list(reg.events(wait=0))
    assert all(isinstance(e, Event) for e in seen)
    assert [e.seq for e in seen] == list(range(1, len(seen) + 1))
    assert [(e.event, e.model, e.version) for e in seen] == [
        ("registry:model:create", "fraud", None),
        ("registry:version:register", "fraud", 1),
        ("registry:alias:set", "fraud", 1),
        ("registry:model:create", "churn", None),
    ]
    assert seen[2].reason == "first"
    assert [e.seq for e in reg.events(2, model="fr*", wait=0)] == [3]


def test_events_after_the_end_waits_then_ends_empty(reg: modelreg.Registry) -> None:
    reg.create_model("fraud")
    assert list(reg.events(1, wait=0.2)) == []


@pytest.mark.parametrize("wait", [-1, 61, True, "5"])
def test_a_bad_wait_is_refused(reg: modelreg.Registry, wait: object) -> None:
    with pytest.raises(InvalidInput):
        reg.events(wait=wait)  # type: ignore[arg-type]


def test_an_embedded_wait_wakes_for_another_process(home: Path) -> None:
    reg = modelreg.Registry(home)
    reg.create_model("fraud")
    writer = threading.Thread(
        target=lambda: (time.sleep(0.5), run_cli("--registry", str(home), "tag", "fraud", "a=1"))
    )
    writer.start()
    seen = list(reg.events(1, wait=60))
    writer.join()
    assert [(e.event, e.model) for e in seen] == [("registry:model:tag", "fraud")]
    reg.close()


def test_follow_yields_each_event_as_it_is_committed(reg: modelreg.Registry) -> None:
    reg.create_model("fraud")
    stream = reg.events(1, follow=True, wait=60)
    writer = threading.Thread(target=lambda: (time.sleep(0.5), reg.create_model("churn")))
    writer.start()
    first = next(stream)
    writer.join()
    assert (first.event, first.model) == ("registry:model:create", "churn")


def test_cli_lists_events_as_json(home: Path) -> None:
    reg = modelreg.Registry(home)
    reg.create_model("fraud")
    reg.close()
    done = run_cli("--registry", str(home), "events", "--json")
    assert done.returncode == 0, done.stderr
    items = json.loads(done.stdout)["items"]
    assert [(e["seq"], e["event"], e["model"]) for e in items] == [
        (1, "registry:model:create", "fraud")
    ]
    done = run_cli("--registry", str(home), "events", "--after", "1")
    assert (done.returncode, done.stdout.strip()) == (0, "no events")


def test_cli_follow_prints_json_lines_and_ctrl_c_exits_0(home: Path) -> None:
    reg = modelreg.Registry(home)
    reg.create_model("fraud")
    follower = subprocess.Popen(
        [MODELREG, "--registry", str(home), "events", "--follow", "--json", "--after", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(0.5)  # likely following by now; if not, --after 1 still shows the change
        reg.set_tags("fraud", {"team": "risk"})
        assert follower.stdout is not None
        line = follower.stdout.readline()  # blocks until the event is printed
        follower.send_signal(signal.SIGINT)
        rest, errors = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
        reg.close()
    assert json.loads(line)["event"] == "registry:model:tag"
    assert (follower.returncode, rest) == (0, ""), errors
