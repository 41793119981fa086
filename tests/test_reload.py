"""Reloading the content without a dropped request (issue 14, point 6), over real HTTP: a server of
two workers (behind nginx when installed, and gunicorn alone) serving a small copy of the bundled content and one file
of extra content, while client threads keep asking $lookup, $translate, $validate-code and /readyz
for the whole module. Reloads by SIGHUP and by `fhir-plugin reload`: one with nothing changed,
one after the extra file changed (the new answer is served, the old one never again), one with a
file that fails validation (the old content is served on, the log and the command say why, the
metric counts it), and SIGHUPs sent during a reload. The last test counts the clients' failures:
none."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers import CM_URL, CPT, CPT_VS, DISPLAY_97116
from live_server import LiveServer, clean_environ, running_server

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
SMALL = ["CodeSystem-cpt-97116-fragment.json", "CodeSystem-designation-use.json",
         "ConceptMap-cpt-97116-to-icd-10-cm.json", "ValueSet-cpt-gait-training.json"]
MINE = "http://example.org/fhir/CodeSystem/my-codes"
SERVED = "3 code system(s), 1 value set(s), 1 concept map(s)"
CLIENTS = 3
WAIT = 60.0  # seconds a reload may take on a busy shared machine (about 0.3 s here)


def my_codes(display: str, version: str) -> dict[str, Any]:
    return {"resourceType": "CodeSystem", "id": "my-codes", "url": MINE, "version": version, "status": "active",
            "content": "complete", "concept": [{"code": "A", "display": display}]}


@dataclass
class Files:
    content: Path
    extra: Path
    pid: Path
    front: str  # FHIR_PLUGIN_FRONT: nginx in front (when installed), or gunicorn alone

    @property
    def status(self) -> Path:
        return self.pid.with_name(self.pid.name + ".reload.json")

    def write_extra(self, resource: dict[str, Any]) -> None:
        temporary = self.extra.with_suffix(".tmp")
        temporary.write_text(json.dumps(resource))
        temporary.replace(self.extra)  # whole: a reload never reads half a file


@pytest.fixture(scope="module", params=["auto", "none"], ids=["front-auto", "gunicorn-alone"])
def files(request, tmp_path_factory) -> Files:
    root = tmp_path_factory.mktemp("reload")
    content = root / "content"
    content.mkdir()
    for name in SMALL:  # small: a reload takes a fraction of a second (ICD-10-CM would take seconds)
        shutil.copy(RESOURCES / name, content / name)
    found = Files(content, root / "my-codes.json", root / "server.pid", request.param)
    found.write_extra(my_codes("Alpha", "3"))
    return found


@pytest.fixture(scope="module")
def server(files) -> Iterator[LiveServer]:
    with running_server(workers=2, settings={"FHIR_PLUGIN_CONTENT": str(files.content),
                                             "FHIR_PLUGIN_EXTRA_CONTENT": str(files.extra),
                                             "FHIR_PLUGIN_PID_FILE": str(files.pid),
                                             "FHIR_PLUGIN_FRONT": files.front}) as live:
        yield live


# --- the clients kept busy for the whole module ---------------------------------------------------


@dataclass
class Answer:
    started: float  # time.monotonic() when the request was sent
    kind: str
    value: Any


def _parameter(body: dict[str, Any], name: str) -> Any:
    found = [p for p in body["parameter"] if p["name"] == name]
    return next(v for k, v in found[0].items() if k.startswith("value")) if found else None


# kind -> (path under the server's URL, query, what of the answer to keep, the value expected or None)
MIX: list[tuple[str, str, dict[str, str], Callable[[Any], Any], Any]] = [
    ("lookup-mine", "/r4/CodeSystem/$lookup", {"system": MINE, "code": "A"},
     lambda r: (_parameter(r.json(), "version"), _parameter(r.json(), "display")), None),
    ("lookup-cpt", "/r4/CodeSystem/$lookup", {"system": CPT, "code": "97116"},
     lambda r: _parameter(r.json(), "display"), DISPLAY_97116),
    ("translate", "/r4/ConceptMap/$translate", {"url": CM_URL, "system": CPT, "code": "97116"},
     lambda r: (_parameter(r.json(), "result"), len([p for p in r.json()["parameter"] if p["name"] == "match"])),
     (True, 3)),
    ("validate-code", "/r5/ValueSet/$validate-code", {"url": CPT_VS, "system": CPT, "code": "97116"},
     lambda r: (_parameter(r.json(), "result"), _parameter(r.json(), "display")), (True, DISPLAY_97116)),
    ("readyz", "/readyz", {}, lambda r: r.json(), {"status": "ready"}),
]


@dataclass
class Clients:
    server: LiveServer
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[Answer] = field(default_factory=list)
    failures: list[tuple[str, Any]] = field(default_factory=list)  # (kind, status and body, or the exception)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for index in range(CLIENTS):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)

    def _run(self, index: int) -> None:
        turn = index
        with requests.Session() as session:  # kept-alive connections to the front, as a real client's
            while not self.stop.is_set():
                kind, path, query, keep, expected = MIX[turn % len(MIX)]
                turn += 1
                started = time.monotonic()
                try:
                    response = session.get(f"{self.server.url}{path}", params=query, timeout=30)
                except requests.RequestException as error:  # a refused or reset connection
                    self.failures.append((kind, repr(error)))
                    continue
                if response.status_code != 200:
                    self.failures.append((kind, (response.status_code, response.text[:300])))
                    continue
                value = keep(response)
                if expected is not None and value != expected:
                    self.failures.append((kind, ("unexpected", value)))
                self.answers.append(Answer(started, kind, value))

    def mine_since(self, moment: float) -> list[Any]:
        return [a.value for a in list(self.answers) if a.kind == "lookup-mine" and a.started > moment]


@pytest.fixture(scope="module")
def clients(server) -> Iterator[Clients]:
    busy = Clients(server)
    busy.start()
    yield busy
    busy.finish()


# --- helpers --------------------------------------------------------------------------------------


def status(files: Files) -> dict[str, Any]:
    return json.loads(files.status.read_text())


def wait_finished(files: Files, count: int) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        now = status(files)
        if now["finished"] >= count:
            return now
        time.sleep(0.02)
    raise AssertionError(f"reload {count} not finished within {WAIT} s: {status(files)}")


def reload_command(files: Files, *args: str, pid_file_setting: bool = False) -> subprocess.CompletedProcess[str]:
    environ = clean_environ()
    if pid_file_setting:
        environ["FHIR_PLUGIN_PID_FILE"] = str(files.pid)
    else:
        args = ("--pid-file", str(files.pid), *args)
    return subprocess.run([sys.executable, "-m", "fhir_plugin", "reload", *args], capture_output=True, text=True,
                          env=environ, timeout=WAIT + 30)


def reload_metrics(server: LiveServer) -> dict[str, float]:
    """fhir_plugin_content_loads_total of kind reload, by result, and the duration histogram's count."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    found: dict[str, float] = {"ok": 0.0, "failed": 0.0, "durations": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("kind") != "reload":
                continue
            if sample.name == "fhir_plugin_content_loads_total":
                found[sample.labels["result"]] = sample.value
            elif sample.name == "fhir_plugin_content_load_seconds_count":
                found["durations"] = sample.value
    return found


def wait_metrics(server: LiveServer, expected: dict[str, float]) -> dict[str, float]:
    """The reload metrics once they say `expected` (a worker answers scrapes from a copy up to a
    second old), or as they are after 5 s."""
    deadline = time.monotonic() + 5
    while True:
        found = reload_metrics(server)
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def content_series(server: LiveServer, url: str) -> dict[str, float]:
    """fhir_plugin_content of the code system `url`: version -> value (its concepts)."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return {sample.labels["version"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "fhir_plugin_content" and sample.labels.get("url") == url}


def booted_workers(server: LiveServer, at_least: int = 0) -> int:
    """How many workers the log says were started (after waiting up to 5 s for `at_least`: a new
    worker writes its line itself, just after the fork)."""
    deadline = time.monotonic() + 5
    while server.output().count("Booting worker with pid") < at_least and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.output().count("Booting worker with pid")


def lookup_mine(server: LiveServer) -> tuple[str, str]:
    with requests.get(f"{server.r4}/CodeSystem/$lookup", params={"system": MINE, "code": "A"}, timeout=30) as answer:
        assert answer.status_code == 200, answer.text
        return _parameter(answer.json(), "version"), _parameter(answer.json(), "display")


# --- the tests, in order: each reload counts on the ones before ----------------------------------


def test_the_server_writes_its_pid_file_and_a_status(server, files, clients):
    assert files.pid.read_text() == f"{server.pid}\n"
    assert status(files) == {"pid": server.pid, "started": 0, "finished": 0, "ok": True,
                             "message": "no reload yet", "seconds": 0.0}
    assert f"  reload: SIGHUP to process {server.pid}, or fhir-plugin reload --port {server.port} " \
           f"(pid file {files.pid})" in server.output().splitlines()
    time.sleep(1)  # the clients have been at it for a second before the first reload
    assert len(clients.answers) > 0, clients.failures
    assert booted_workers(server, 2) == 2  # both up (the server answered once one was)


def test_sighup_reloads_and_replaces_every_worker(server, files, clients):
    booted = booted_workers(server)
    os.kill(server.pid, signal.SIGHUP)
    done = wait_finished(files, 1)
    assert (done["started"], done["ok"], done["message"]) == (1, True, SERVED)
    assert booted_workers(server, booted + 2) == booted + 2  # two new workers for the two old ones
    assert lookup_mine(server) == ("3", "Alpha")
    assert wait_metrics(server, {"ok": 1, "failed": 0, "durations": 1}) == {"ok": 1, "failed": 0, "durations": 1}
    log = server.output()
    assert "fhir-plugin INFO fhir_plugin.reload: reload 1: loading the content again" in log
    assert re.search(rf"fhir-plugin INFO fhir_plugin.reload: reload 1 done in \d+\.\d\d s \(content \d+\.\d\d s, "
                     rf"garbage collection \d+\.\d\d s, new workers for old \d+\.\d\d s\): {re.escape(SERVED)}\n", log)


def test_fhir_plugin_reload_serves_changed_content_and_never_the_old_answer(server, files, clients):
    assert lookup_mine(server) == ("3", "Alpha")  # cached now in a worker's answer cache
    files.write_extra(my_codes("Alpha, reloaded", "4"))
    assert lookup_mine(server) == ("3", "Alpha")  # nothing changes before the reload
    done = reload_command(files)
    finished = time.monotonic()
    assert (done.returncode, done.stderr) == (0, "")
    assert re.fullmatch(rf"fhir-plugin: reloaded in \d+\.\d\d s \(pid {server.pid}\): {re.escape(SERVED)}\n",
                        done.stdout)
    assert status(files)["finished"] == 2
    assert [lookup_mine(server) for _ in range(10)] == [("4", "Alpha, reloaded")] * 10
    time.sleep(1)
    since = clients.mine_since(finished)
    assert since and set(since) == {("4", "Alpha, reloaded")}  # every worker, no answer cached before
    assert wait_metrics(server, {"ok": 2, "failed": 0, "durations": 2}) == {"ok": 2, "failed": 0, "durations": 2}
    assert content_series(server, MINE) == {"3": 0.0, "4": 1.0}  # version 3 is no longer served


def test_a_reload_that_fails_validation_serves_on_what_was_loaded_and_says_why(server, files, clients):
    booted = booted_workers(server)
    broken = my_codes("Alpha, broken", "5")
    broken["status"] = "bogus"
    files.write_extra(broken)
    why = (f"{files.extra}: CodeSystem/my-codes is not valid FHIR R5: status: 'bogus' is not one of active, draft, "
           f"retired, unknown")
    done = reload_command(files, pid_file_setting=True)  # the pid file named by FHIR_PLUGIN_PID_FILE this time
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"fhir-plugin: reload failed (pid {server.pid}); the server still serves the content "
                           f"loaded before: {why}\n")
    assert {k: v for k, v in status(files).items() if k != "seconds"} == {
        "pid": server.pid, "started": 3, "finished": 3, "ok": False, "message": why}
    assert re.search(rf"fhir-plugin ERROR fhir_plugin.reload: reload 3 failed after \d+\.\d\d s; still serving the "
                     rf"content loaded before: {re.escape(why)}\n", server.output())
    assert booted_workers(server) == booted  # the workers were left alone
    assert [lookup_mine(server) for _ in range(10)] == [("4", "Alpha, reloaded")] * 10
    assert wait_metrics(server, {"ok": 2, "failed": 1, "durations": 3}) == {"ok": 2, "failed": 1, "durations": 3}
    assert requests.get(f"{server.url}/readyz", timeout=10).json() == {"status": "ready"}
    files.write_extra(my_codes("Alpha, reloaded", "4"))


def test_reload_signals_during_a_reload_make_exactly_one_more(server, files, clients):
    before = status(files)["finished"]
    for _attempt in range(5):  # a reload lasts about 0.3 s here: catch one while it runs
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + WAIT
        while status(files)["started"] == before and time.monotonic() < deadline:
            time.sleep(0.002)
        running = status(files)
        if running["finished"] == before:  # still running: two more signals during it
            os.kill(server.pid, signal.SIGHUP)
            os.kill(server.pid, signal.SIGHUP)
            if status(files)["finished"] == before:
                break
        wait_finished(files, before + 1)
        before = status(files)["finished"]
    else:
        pytest.fail("no reload was caught while it ran")
    wait_finished(files, before + 2)
    time.sleep(2)  # time for any reload beyond the one more to start
    after = status(files)
    assert (after["started"], after["finished"], after["ok"], after["message"]) == (before + 2, before + 2, True,
                                                                                     SERVED)
    # (the kernel may merge the two signals into one before the master runs: either way one reload more)
    assert lookup_mine(server) == ("4", "Alpha, reloaded")


def test_the_master_takes_many_reload_signals_of_one_turn_as_one():
    import logging

    from fhir_plugin.reloading import coalesce

    class Kept(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.INFO)
            self.messages: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.messages.append(record.getMessage())

    hup, chld, term = signal.SIGHUP, signal.SIGCHLD, signal.SIGTERM
    logger, kept = logging.getLogger("fhir_plugin.reload"), Kept()
    level = logger.level
    logger.addHandler(kept)
    logger.setLevel(logging.INFO)
    try:
        assert coalesce([chld, term]) == [chld, term]
        assert coalesce([hup]) == [hup]
        assert coalesce([chld, hup, chld, hup, term, hup]) == [chld, hup, chld, term]
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
    assert kept.messages == ["3 reload signals at once (sent together, or during a reload): one reload for them"]


def test_no_request_failed_through_every_reload(server, files, clients):
    time.sleep(1)
    clients.finish()
    kinds = {kind: sum(1 for a in clients.answers if a.kind == kind) for kind, *_ in MIX}
    reloads = status(files)["finished"]
    print(f"\n{files.front}: {len(clients.answers)} answers during {reloads} reloads, by kind: {kinds}; failures: "
          f"{len(clients.failures)}")
    assert clients.failures == []
    assert all(count > 0 for count in kinds.values()), kinds
    assert reloads >= 5


# --- in-process: what a reload does with content loaded at run time -------------------------------

TOKEN = "reload-token"
LOADED = "http://example.org/fhir/CodeSystem/loaded"


def test_a_reload_keeps_run_time_loads_on_top_and_refuses_a_conflict_with_them(tmp_path):
    from fhir_plugin.app import create_app
    from fhir_plugin.content.errors import InvalidContent
    from fhir_plugin.extension import reload_content

    content = tmp_path / "content"
    content.mkdir()
    for name in SMALL:
        shutil.copy(RESOURCES / name, content / name)
    extra = tmp_path / "my-codes.json"
    extra.write_text(json.dumps(my_codes("Alpha", "3")))
    app = create_app({"FHIR_PLUGIN_CONTENT": str(content), "FHIR_PLUGIN_EXTRA_CONTENT": str(extra),
                      "FHIR_PLUGIN_PACKAGES": "", "FHIR_PLUGIN_ADMIN_TOKEN": TOKEN,
                      "FHIR_PLUGIN_LOAD_DIR": str(tmp_path / "loaded")})
    client = app.test_client()
    loaded = {"resourceType": "CodeSystem", "id": "loaded", "url": LOADED, "version": "1", "status": "active",
              "content": "complete", "concept": [{"code": "X", "display": "Loaded"}]}
    assert client.post("/admin/content", query_string={"name": "loaded.json"}, data=json.dumps(loaded),
                       headers={"Authorization": f"Bearer {TOKEN}"},
                       content_type="application/fhir+json").status_code == 201

    def display(system: str, code: str) -> str:
        answer = client.get("/r4/CodeSystem/$lookup", query_string={"system": system, "code": code})
        assert answer.status_code == 200, answer.get_json()
        return _parameter(answer.get_json(), "display")

    assert (display(MINE, "A"), display(LOADED, "X")) == ("Alpha", "Loaded")
    extra.write_text(json.dumps(my_codes("Alpha, reloaded", "4")))
    served = reload_content(app)
    assert [entry for entry in served if entry[1] == MINE] == [("CodeSystem", MINE, "4", 1)]
    assert (display(MINE, "A"), display(LOADED, "X")) == ("Alpha, reloaded", "Loaded")
    # the new content now says something else under the loaded file's url|version
    extra.write_text(json.dumps({**loaded, "id": "clash", "concept": [{"code": "X", "display": "Clash"}]}))
    with pytest.raises(InvalidContent) as refused:
        reload_content(app)
    assert refused.value.text == (f"CodeSystem '{LOADED}' version '1' is loaded twice with different content: in "
                                  f"the content the server started with and in loaded.json")
    assert (display(MINE, "A"), display(LOADED, "X")) == ("Alpha, reloaded", "Loaded")


def test_the_default_pid_file_is_named_by_the_port(tmp_path):
    import tempfile

    from fhir_plugin.config import pid_file

    assert pid_file({}, 8080, environ={"XDG_RUNTIME_DIR": "/run/user/1000"}) == Path("/run/user/1000/fhir-plugin-8080.pid")
    assert pid_file({}, 8081, environ={}) == Path(tempfile.gettempdir()) / f"fhir-plugin-{os.getuid()}-8081.pid"
    assert pid_file({"FHIR_PLUGIN_PID_FILE": str(tmp_path / "x.pid")}, 8080,
                    environ={"XDG_RUNTIME_DIR": "/run/user/1000"}) == tmp_path / "x.pid"
