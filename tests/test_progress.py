"""Progress of long runs (wideseek/progress.py): rich's bar on a terminal; in a log, a plain line
at most every `every_s` seconds and at the end, with the time left from this process's pace."""

import io

import pytest
from rich.console import Console
from rich.progress import Progress

from wideseek import progress as progress_module
from wideseek.progress import LineProgress, run_progress


@pytest.fixture
def clock(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    return now


def log_console() -> Console:
    return Console(file=io.StringIO(), width=200)  # a file: not a terminal


def lines(console: Console) -> list[str]:
    return console.file.getvalue().splitlines()


def test_a_terminal_gets_richs_bar_and_a_log_gets_lines():
    assert isinstance(run_progress(console=Console(file=io.StringIO(), force_terminal=True)),
                      Progress)  # fmt: skip
    assert isinstance(run_progress(console=log_console()), LineProgress)
    assert isinstance(run_progress(console=log_console(), disable=True), Progress)


def test_a_resumed_run_prints_a_line_a_minute_and_its_end_with_the_time_left(clock):
    console = log_console()
    with run_progress(console=console, every_s=60) as progress:
        bar = progress.add_task("sft", total=10, completed=4)  # 4 steps done by an earlier process
        for _ in range(6):
            clock[0] += 25  # a step every 25 s
            progress.update(bar, advance=1, description="sft loss 0.452")
    # lines at 75 s (3 steps, past the minute) and at the end; the 4 earlier steps are not
    # counted in the pace (3 steps in 75 s: 3 left take 75 s)
    assert lines(console) == [
        "sft loss 0.452: 7/10 (70%), 0:01:15 elapsed, ~0:01:15 left",
        "sft loss 0.452: 10/10 (100%), 0:02:30 elapsed",
    ]


def test_fields_follow_the_description_and_an_unknown_total_prints_the_count(clock):
    console = log_console()
    progress = run_progress(console=console, every_s=0)
    bar = progress.add_task("wide (2 done before)", total=4, running="")
    clock[0] += 10
    progress.update(bar, advance=1)
    progress.update(bar, advance=1, running="item_f1 0.412")
    open_ended = progress.add_task("[bold]pages", total=None)
    clock[0] += 5
    progress.update(open_ended, advance=3)
    assert lines(console) == [
        "wide (2 done before): 1/4 (25%), 0:00:10 elapsed, ~0:00:30 left",
        "wide (2 done before) item_f1 0.412: 2/4 (50%), 0:00:10 elapsed, ~0:00:10 left",
        "[bold]pages: 3, 0:00:05 elapsed",
    ]


def test_a_run_that_stops_on_an_exception_logs_where_it_stopped(clock):
    console = log_console()
    with pytest.raises(KeyboardInterrupt), run_progress(console=console, every_s=60) as progress:
        steps = progress.add_task("sft", total=2_000_000)
        progress.add_task("eval", total=5)
        clock[0] += 70
        progress.update(steps, advance=1_250_000)  # a line: a minute has passed
        clock[0] += 10
        progress.update(steps, advance=0.5, total=4_000_000)  # a new total, as rich takes it
        raise KeyboardInterrupt
    # the last line is the stop's; the task that never moved prints nothing
    assert lines(console) == [
        "sft: 1,250,000/2,000,000 (62%), 0:01:10 elapsed, ~0:00:42 left",
        "sft: 1,250,000.5/4,000,000 (31%), 0:01:20 elapsed, ~0:02:56 left",
    ]
