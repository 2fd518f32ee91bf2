"""Every command's --help renders (rich markup in help texts can break it at run time)."""

import pytest

from wideseek.cli import main

COMMANDS = [
    [], ["ask"], ["eval"], ["eval", "widesearch"], ["eval", "qa"], ["eval", "world"],
    ["eval", "sweep"], ["train", "eval"],
    ["score"], ["report"], ["serve"], ["world"], ["world", "build"], ["world", "stats"],
    ["trace", "show"], ["retrieval", "serve"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_renders(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    assert "Usage: " in capsys.readouterr().out
