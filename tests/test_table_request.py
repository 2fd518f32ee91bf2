"""A person's question → the table request the agents are trained on (runtime/table_request)."""

from __future__ import annotations

import pytest

from test_cli_ask import ask_over_http
from wideseek.runtime.table_request import infer_columns, table_request
from wideseek.types import read_trajectories
from wideseek.world import load_world
from wideseek.world.suites import wide_tasks

# Written the way people ask; none of them comes from the world's templates.
PHRASINGS = [
    (
        "List the 5 most populous cities of Morocco with their population and latitude.",
        ["City", "Population", "Latitude"],
    ),
    (
        "Which countries share a land border with France? Give me a table with their capital, "
        "population and currency.",
        ["Country", "Capital", "Population", "Currency"],
    ),
    (
        "Give me a table of the chemical elements with atomic numbers 31 to 45 with their "
        "symbol and atomic mass.",
        ["Element", "Symbol", "Atomic Mass"],
    ),
    (
        "Compare the international airports of Japan: IATA code, ICAO code and city.",
        ["Airport", "IATA Code", "ICAO Code", "City"],
    ),
    (
        "I need all countries that use the euro, along with their capital and calling code",
        ["Country", "Capital", "Calling Code"],
    ),
    (
        "Show me US states that joined the union before 1800 and their capital and statehood year",
        ["State", "Capital", "Statehood Year"],
    ),
    (
        "Can you list every country in South America with its capital, population and currency?",
        ["Country", "Capital", "Population", "Currency"],
    ),
]


# The same in Chinese, written for these tests (not the world's templates or reworded wordings).
ZH_PHRASINGS = [
    ("列出摩洛哥人口最多的5个城市及其人口和纬度。", ["城市", "人口", "纬度"]),
    ("哪些国家与法国陆地接壤？请列出它们的首都、人口和货币。", ["国家", "首都", "人口", "货币"]),
    (
        "给我一张表格：原子序数31到45的化学元素的元素符号和原子质量",
        ["化学元素", "元素符号", "原子质量"],
    ),
    (
        "比较日本的国际机场：IATA代码、ICAO代码和所在城市",
        ["国际机场", "IATA代码", "ICAO代码", "所在城市"],
    ),
    ("与乍得接壤的国家的首都和人口分别是什么？", ["国家", "首都", "人口"]),
    ("南美洲所有国家，包括首都、人口和货币", ["国家", "首都", "人口", "货币"]),
    ("列出1800年以前加入联邦的美国各州及其首府和加入年份", ["州", "首府", "加入年份"]),
]


@pytest.mark.parametrize("question, columns", PHRASINGS + ZH_PHRASINGS)
def test_columns_are_read_from_how_people_ask(question, columns):
    assert infer_columns(question) == columns


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",  # a deep question: no list, no attributes
        "列出与中国接壤的所有国家",  # a list, no attributes: the model's columns
        "法国的首都是什么？",  # a deep question
        "Quels pays bordent la France, avec leur capitale ?",  # other languages: the caller's
        "List the capitals of Chile and Peru. Columns: Country, Capital.",  # already named
        "",
    ],
)
def test_questions_without_readable_columns_are_left_as_asked(question):
    assert infer_columns(question) is None
    request = table_request(question)
    assert request.question == question and request.columns is None


def test_the_request_states_the_columns_in_a_line_the_training_questions_use():
    request = table_request(PHRASINGS[0][0])
    assert request.inferred and request.columns == ["City", "Population", "Latitude"]
    instruction = "Return one Markdown table with these columns:\nCity, Population, Latitude"
    assert request.question.startswith(PHRASINGS[0][0] + "\n" + instruction + "\n")
    # the same table line and closing line occur in the world's own (training) questions
    questions = [t.question for t in wide_tasks(load_world(), "train")]
    assert any("Return one Markdown table with these columns:\n" in q for q in questions)
    closing = request.question.splitlines()[-3:]
    assert any("\n".join(closing) in q for q in questions)


def test_given_columns_win_and_follow_the_questions_language():
    request = table_request("List the cities of Peru with their population.", [" Town ", "Pop"])
    assert request.columns == ["Town", "Pop"] and not request.inferred
    zh = table_request("列出与中国接壤的所有国家", ["国家", "首都"])
    assert "列名依次为：\n国家、首都" in zh.question
    inferred = table_request(ZH_PHRASINGS[0][0])  # read from a Chinese question: stated in Chinese
    assert inferred.inferred and "列名依次为：\n城市、人口、纬度" in inferred.question
    with pytest.raises(ValueError, match="at least one column"):
        table_request("anything", [" ", ""])


def test_ask_prints_the_columns_and_the_lead_gets_them(tmp_path, capsys):
    def responder(endpoint, body):
        return "| City | Population |\n|---|---|\n| Lima | 1 |"

    code, out, srv = ask_over_http(
        tmp_path, responder, "List the largest cities of Peru with their population.",
        "--mode", "single",
    )  # fmt: skip
    assert code == 0
    assert "columns: City | Population (read from the question" in capsys.readouterr().out
    chat = next(r for r in srv.requests if "messages" in r.body)
    prompt = chat.body["messages"][-1]["content"]
    assert "Return one Markdown table with these columns:\nCity, Population" in prompt
    (traj,) = read_trajectories(out)
    assert traj.task.metadata["asked"] == "List the largest cities of Peru with their population."


def test_ask_reads_a_chinese_questions_columns_and_states_them_in_chinese(tmp_path, capsys):
    question = "列出秘鲁人口最多的3个城市及其人口和纬度。"
    code, _, srv = ask_over_http(
        tmp_path, lambda endpoint, body: "| 城市 | 人口 | 纬度 |\n|---|---|---|\n| 利马 | 1 | 2 |",
        question, "--mode", "single",
    )  # fmt: skip
    assert code == 0
    assert "columns: 城市 | 人口 | 纬度 (read from the question" in capsys.readouterr().out
    chat = next(r for r in srv.requests if "messages" in r.body)
    assert "列名依次为：\n城市、人口、纬度" in chat.body["messages"][-1]["content"]


def test_ask_with_empty_columns_is_a_one_line_error(tmp_path, capsys):
    code, _, srv = ask_over_http(tmp_path, lambda e, b: "x", "q", "--columns", " , ")
    err = capsys.readouterr().err.strip()
    assert code != 0 and err.startswith("error:") and "\n" not in err and "--columns" in err
    assert not any("messages" in r.body for r in srv.requests)  # nothing was asked
