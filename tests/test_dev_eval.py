"""Dev evaluation: runtime + world + scorer wiring, and format-validity metrics."""

from itertools import islice

import pandas as pd

from scripted_engine import ScriptedEngine
from tiny_lm import make_tiny_lm
from wideseek.eval.runner import read_results
from wideseek.eval.table_extract import render_markdown_table
from wideseek.llm.toolcall import format_tool_call
from wideseek.train.dev_eval import DevEvalSettings, dev_eval, evaluate_engine, oracle_eval
from wideseek.world import load_world
from wideseek.world.suites import deep_tasks, wide_tasks

SETTINGS = DevEvalSettings(wide_tasks=2, deep_tasks=2, concurrency=2)


def perfect_answers() -> dict[str, str]:
    """Task question -> the gold answer in the required format (a lead that knows it all)."""
    world = load_world()
    answers = {}
    for task in islice(wide_tasks(world, "dev"), 2):
        answers[task.question] = render_markdown_table(pd.read_csv(task.metadata["gold"]))
    for task in islice(deep_tasks(world, "dev"), 2):
        answers[task.question] = f"\\boxed{{{task.golden_answers[0]}}}"
    return answers


async def test_perfect_answers_score_one_and_count_as_valid(tmp_path):
    answers = perfect_answers()

    def lead(request):
        question = request.messages[1].content
        return next(a for q, a in answers.items() if q in question)

    metrics = await evaluate_engine(ScriptedEngine(responder=lead), SETTINGS, tmp_path)
    assert metrics["wide_item_f1"] == 1.0 and metrics["wide_success"] == 1.0
    assert metrics["deep_em"] == 1.0
    assert metrics["call_validity"] == metrics["finished"] == metrics["answer_validity"] == 1.0
    assert (tmp_path / "wide" / "trajectories.jsonl").exists()
    assert (tmp_path / "deep" / "results.jsonl").exists()


async def test_malformed_calls_and_missing_answers_are_counted(tmp_path):
    settings = SETTINGS.model_copy(update={"agent": {"lead_turns": 2, "seed": 0}})
    bad_call = '<tool_call>{"name": "create_subagents", "arguments": {</tool_call>'
    good_call = format_tool_call("create_subagents", {"subtasks": ["find it"]})
    engine = ScriptedEngine({"lead": [bad_call, good_call] * 4}, fallback="no idea")
    metrics = await evaluate_engine(engine, settings, tmp_path)
    # per task: lead turns bad, good (2 turns, turn limit); one subagent answers at once
    assert metrics["call_validity"] == 2 / 3
    assert metrics["finished"] == 0.5
    assert metrics["answer_validity"] == 0.0 and metrics["wide_item_f1"] == 0.0


def test_dev_eval_runs_a_checkpoint_through_the_local_engine(tmp_path):
    model = make_tiny_lm(tmp_path, max_positions=4096)
    settings = DevEvalSettings(
        wide_tasks=1,
        deep_tasks=1,
        agent={"lead_turns": 1, "max_response_tokens": 8, "context_length": 4096, "seed": 0},
    )
    metrics = dev_eval(model, settings, tmp_path / "run")
    assert set(metrics) >= {"wide_item_f1", "deep_em", "call_validity", "answer_validity"}
    assert metrics["turns_per_task"] == 1.0  # one lead turn each; a random model delegates never


def test_the_oracle_is_scored_on_the_same_tasks_and_limits(tmp_path):
    # ample context: it reads every value, so it scores one
    metrics = oracle_eval(SETTINGS, tmp_path / "ample")
    assert metrics["wide_item_f1"] == metrics["deep_em"] == 1.0
    assert metrics["call_validity"] == 1.0
    tasks = [r.instance_id for r in read_results(tmp_path / "ample" / "wide")]
    # in the order they finished: tasks run side by side
    assert sorted(tasks) == sorted(t.id for t in islice(wide_tasks(load_world(), "dev"), 2))
    # a context too small for one agent to read its pages: the same limit binds the oracle
    tight = SETTINGS.model_copy(update={"mode": "single", "agent": {"context_length": 1024}})
    squeezed = oracle_eval(tight, tmp_path / "tight")
    assert squeezed["finished"] < 1.0 and squeezed["wide_item_f1"] < 1.0
