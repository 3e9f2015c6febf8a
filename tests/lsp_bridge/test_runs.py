"""The policy of a run for the room (lsp_bridge/runs.py): command choice, the run's
transitions, the output cap, the end line, and "ask a peer to run"."""

from __future__ import annotations

import pytest

from lsp_bridge.runs import (
    DEFAULT_CAP,
    DRAIN_RATE,
    KEEP_RATE,
    PACE_BURST,
    ChoiceError,
    Run,
    RunRequests,
    RunState,
    choose_command,
    is_run_path,
    output_change,
    parse_tasks,
    run_path,
)


@pytest.mark.parametrize(
    ("path", "argv"),
    [
        ("src/app.py", ["python3", "src/app.py"]),
        ("web/main.js", ["node", "web/main.js"]),
        ("cmd/main.go", ["go", "run", "cmd/main.go"]),
        ("src/main.rs", ["cargo", "run"]),
        ("build.sh", ["bash", "build.sh"]),
    ],
)
def test_the_file_language_chooses_the_usual_runner(path: str, argv: list[str]) -> None:
    assert choose_command(path=path)[0] == argv


def test_a_file_with_no_usual_runner_asks_for_a_command_line() -> None:
    with pytest.raises(ChoiceError, match="type a command line"):
        choose_command(path="notes.txt")


def test_a_typed_line_wins_and_is_split_like_a_shell_never_run_by_one() -> None:
    argv, name = choose_command(path="a.py", command="python3 -c 'print(1); print(2)'")
    assert argv == ["python3", "-c", "print(1); print(2)"]
    assert name == "python3"
    with pytest.raises(ChoiceError):
        choose_command(command="   ")
    with pytest.raises(ChoiceError):
        choose_command(command="echo 'unclosed")


def test_a_task_comes_from_run_toml() -> None:
    tasks = parse_tasks('[tasks]\ntest = "python3 -m pytest -q"\nserve = ["node", "server.js"]\n')
    assert choose_command(task="test", tasks=tasks) == (["python3", "-m", "pytest", "-q"], "test")
    assert choose_command(task="serve", tasks=tasks)[0] == ["node", "server.js"]
    with pytest.raises(ChoiceError, match="tasks: serve, test"):
        choose_command(task="lint", tasks=tasks)
    with pytest.raises(ChoiceError, match="no .pairls/run.toml"):
        choose_command(task="test", tasks=None)


@pytest.mark.parametrize("text", ["[tasks\n", "tasks = 3\n", "[tasks]\nx = 3\n", '[tasks]\nx = ""\n'])
def test_a_bad_run_toml_is_a_clear_error(text: str) -> None:
    with pytest.raises(ChoiceError, match="run.toml"):
        parse_tasks(text)


def test_output_documents_live_under_pairls_runs() -> None:
    assert run_path("r1") == ".pairls/runs/r1.log"
    assert is_run_path(run_path("r1"))
    assert not is_run_path("src/.pairls/runs/x")
    assert not is_run_path(".pairls/run.toml")


def _run(cap: int = DEFAULT_CAP) -> Run:
    return Run("r1", ["python3", "slow.py"], "slow.py", "Ada", created_at=100.0, cap=cap)


def test_a_run_goes_from_starting_through_running_to_ended_with_the_end_line() -> None:
    run = _run()
    assert run.state is RunState.STARTING
    run.output_received(b"ignored before start")
    run.started(100.5)
    assert run.state is RunState.RUNNING
    run.output_received(b"one\n")
    run.output_received(b"two\n")
    assert run.text_to_send() == "one\ntwo\n"
    assert run.text_to_send() == ""
    run.exited(3, 102.0)
    assert run.state is RunState.ENDED
    end = run.text_to_send()
    assert end == "\n[pairls: python3 slow.py run by Ada: exit status 3 after 1.5s]\n"
    assert run.describe() == {
        "runId": "r1",
        "path": ".pairls/runs/r1.log",
        "by": "Ada",
        "name": "slow.py",
        "command": "python3 slow.py",
        "state": "ended",
        "startedAt": 100.5,
        "exitCode": 3,
        "endedAt": 102.0,
    }
    run.output_received(b"late")
    run.exited(0, 103.0)
    assert run.text_to_send() == "" and run.exit_code == 3


def test_a_character_split_between_reads_is_whole_in_the_document() -> None:
    run = _run()
    run.started(0.0)
    data = "é€\n".encode()
    for i in range(len(data)):
        run.output_received(data[i : i + 1])
    assert run.text_to_send() == "é€\n"


def test_output_is_cut_at_the_cap_with_a_clear_note_once() -> None:
    run = _run(cap=10)
    run.started(0.0)
    run.output_received(b"12345678")
    run.output_received(b"abcdef")
    run.output_received(b"more")
    text = run.text_to_send()
    assert text.startswith("12345678ab\n[pairls: output cut at 10 bytes; the rest is not shown]\n")
    assert text.count("output cut") == 1
    assert run.kept == 10 and run.dropped == 8
    run.exited(0, 1.0)
    assert "8 bytes of output not shown" in run.text_to_send()


def test_output_that_exactly_fills_the_cap_is_cut_only_when_more_comes() -> None:
    run = _run(cap=4)
    run.started(0.0)
    run.output_received(b"abcd")
    assert run.text_to_send() == "abcd"
    run.output_received(b"e")
    assert "output cut at 4 bytes" in run.text_to_send()


def test_output_that_comes_a_little_at_a_time_is_read_at_once() -> None:
    run = _run()
    run.started(0.0)
    now = 0.0
    for _ in range(1000):  # a line of 100 bytes every 10 ms: 10 KB/s, far under the pace
        run.output_received(b"x" * 99 + b"\n")
        assert run.read_wait(100, now) == 0.0
        now += 0.01


def test_a_flood_is_read_at_the_keep_rate_after_a_burst() -> None:
    run = _run()
    run.started(0.0)
    run.output_received(b"x" * PACE_BURST)
    assert run.read_wait(PACE_BURST, 0.0) == 0.0  # the burst: at once
    run.output_received(b"x" * PACE_BURST)
    wait = run.read_wait(PACE_BURST, 0.0)
    assert wait == pytest.approx(PACE_BURST / KEEP_RATE)
    # read again when told to: the same wait again, the rate holds
    run.output_received(b"x" * PACE_BURST)
    assert run.read_wait(PACE_BURST, wait) == pytest.approx(PACE_BURST / KEEP_RATE)
    # a pause refills the burst, no more
    assert run.read_wait(PACE_BURST, 60.0) == 0.0
    assert run.read_wait(PACE_BURST, 60.0) == pytest.approx(PACE_BURST / KEEP_RATE)


def test_output_past_the_cap_is_drained_faster_than_kept() -> None:
    run = _run(cap=PACE_BURST)
    run.started(0.0)
    run.output_received(b"x" * PACE_BURST)
    assert run.read_wait(PACE_BURST, 0.0) == 0.0
    run.output_received(b"x" * PACE_BURST)  # all of it past the cap
    assert run.cut
    assert run.read_wait(PACE_BURST, 0.0) == pytest.approx(PACE_BURST / DRAIN_RATE)
    assert DRAIN_RATE > KEEP_RATE


def test_the_default_cap_is_one_mib() -> None:
    run = _run()
    run.started(0.0)
    chunk = b"x" * 65536
    for _ in range(5 * 16):  # 5 MiB
        run.output_received(chunk)
    text = run.text_to_send()
    assert text.count("x") == 1 << 20
    assert "output cut at 1 MiB" in text
    assert run.dropped == 4 << 20


def test_stop_moves_a_running_run_to_stopping_and_the_end_line_says_so() -> None:
    run = _run()
    assert not run.stop_requested()  # not started: nothing to stop yet
    run.started(0.0)
    assert run.stop_requested()
    assert run.state is RunState.STOPPING
    assert not run.stop_requested()  # once
    run.output_received(b"bye\n")
    run.exited(-15, 2.0)
    assert (
        run.text_to_send()
        == "bye\n\n[pairls: python3 slow.py run by Ada: stopped (exit status -15) after 2.0s]\n"
    )


def test_a_run_that_cannot_start_ends_with_the_reason() -> None:
    run = _run()
    run.failed_to_start("no such program: python3", 5.0)
    assert run.state is RunState.ENDED and run.exit_code is None
    assert "could not start: no such program: python3" in run.text_to_send()
    assert run.describe()["exitCode"] is None


def test_a_peer_request_is_only_a_question_until_the_user_decides() -> None:
    requests = RunRequests()
    req = requests.received({"requestId": "q1", "command": "python3 app.py"}, "p-bob", "Bob")
    assert req is not None
    assert req.argv == ["python3", "app.py"]
    assert "Bob asks you to run `python3 app.py`" in req.question()
    assert requests.decide("q1", accept=False) is None
    assert requests.decide("q1", accept=True) is None  # answered once: a late yes starts nothing


def test_an_accepted_request_hands_back_the_exact_command_once() -> None:
    requests = RunRequests()
    requests.received({"requestId": "q1", "command": ["python3", "-c", "print(1)"]}, "p-bob", "Bob")
    assert requests.decide("q1", accept=True) == ["python3", "-c", "print(1)"]
    assert requests.decide("q1", accept=True) is None


@pytest.mark.parametrize(
    "msg",
    [
        {"requestId": "q1"},
        {"requestId": "q1", "command": ""},
        {"requestId": "q1", "command": 42},
        {"requestId": "", "command": "ls"},
        {"requestId": "x" * 65, "command": "ls"},
        {"command": "ls"},
        {"requestId": "q1", "command": ["ls", 3]},
    ],
)
def test_a_malformed_request_is_dropped_and_counted(msg: dict[str, object]) -> None:
    requests = RunRequests()
    assert requests.received(msg, "p-eve", "Eve") is None
    assert requests.refused == 1 and not requests.pending


def test_a_flood_of_requests_keeps_only_a_few_open_and_a_repeated_id_is_refused() -> None:
    requests = RunRequests(max_pending=2)
    assert requests.received({"requestId": "a", "command": "ls"}, "p", "Eve")
    assert requests.received({"requestId": "a", "command": "rm -rf /"}, "p", "Eve") is None
    assert requests.pending["a"].argv == ["ls"]
    assert requests.received({"requestId": "b", "command": "ls"}, "p", "Eve")
    assert requests.received({"requestId": "c", "command": "ls"}, "p", "Eve") is None
    assert requests.refused == 2


def test_only_a_literal_true_accepts() -> None:
    requests = RunRequests()
    requests.received({"requestId": "a", "command": "ls"}, "p", "Eve")
    assert requests.decide("a", accept="yes") is None  # type: ignore[arg-type]


@pytest.mark.parametrize("command", ["ls\nrm -rf ~", "echo hi\r", "echo \u202esafe", "ls\u200b", "ls\x1b[2K"])
def test_a_command_line_the_user_could_not_read_as_it_is_is_refused(command: str) -> None:
    requests = RunRequests()
    assert requests.received({"requestId": "a", "command": command}, "p", "Eve") is None
    assert requests.refused == 1


def test_the_user_is_shown_the_command_line_exactly_as_sent() -> None:
    requests = RunRequests()
    req = requests.received({"requestId": "a", "command": "python3  -c 'print(1)'"}, "p", "Eve")
    assert req is not None and req.command == "python3  -c 'print(1)'"


def test_what_a_terminal_is_told_of_an_output_that_grows() -> None:
    p = ".pairls/runs/r1.log"
    assert output_change(p, "$ x\n", [4, "line 1\n"], "$ x\nline 1\n") == {
        "path": p,
        "at": 4,
        "text": "line 1\n",
    }
    assert output_change(p, "", ["$ x\n"], "$ x\n") == {"path": p, "at": 0, "text": "$ x\n"}
    # (code points, as the room counts: an emoji is one)
    assert output_change(p, "🙂\n", [2, "é"], "🙂\né") == {"path": p, "at": 2, "text": "é"}
    # anything but an append at the end: the whole text, to draw again
    assert output_change(p, "abc", [1, "x", 2], "axbc") == {"path": p, "at": None, "text": "axbc"}
    assert output_change(p, "abc", [-1, 2], "bc") == {"path": p, "at": None, "text": "bc"}
