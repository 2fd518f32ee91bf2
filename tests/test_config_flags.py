"""CLI flags land in the config as typed, never re-read as YAML."""

from pathlib import Path

from wideseek.cli.options import build_config


def test_flag_values_are_not_reparsed_as_yaml(tmp_path):
    cfg = build_config(model="2024", corpus=Path("#x"), engine="null")
    assert cfg.engine.model == "2024"  # YAML would make it an int
    assert cfg.tools.corpus == "#x"  # YAML would make it a comment, i.e. None
    assert cfg.engine.base_url == "null"


def test_flags_win_over_set_overrides_which_win_over_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("agent: {lead_turns: 3, max_subagents: 2}\nengine: {model: a}\n")
    cfg = build_config(config=path, set_=["agent.lead_turns=5", "engine.model=b"], model="c")
    assert (cfg.agent.lead_turns, cfg.agent.max_subagents, cfg.engine.model) == (5, 2, "c")


def test_on_and_off_read_as_yaml_booleans_still_mean_on_and_off(tmp_path):
    # docs/engines.md's `--set engine.int8_decode=off`: YAML reads a bare off as False
    path = tmp_path / "run.yaml"
    path.write_text("engine: {int8_decode: on}\n")
    assert build_config(config=path).engine.int8_decode == "on"
    assert build_config(set_=["engine.int8_decode=off"]).engine.int8_decode == "off"
    assert build_config(set_=["engine.int8_decode=auto"]).engine.int8_decode == "auto"
