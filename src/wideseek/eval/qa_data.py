"""Open-domain QA task files: one JSON object per line with `question` and `golden_answers`
(a string or a list; NQ / HotpotQA / FlashRAG style), optional `id` and `language`.

`load_qa_tasks(path)` returns `Task`s of kind "qa"; a file that cannot be read, or a line that
is not such a record, is a `DataError` naming the file and line.
"""

from __future__ import annotations

from pathlib import Path

from wideseek.errors import DataError
from wideseek.io import iter_jsonl
from wideseek.types import Task


def load_qa_tasks(path: str | Path) -> list[Task]:
    path = Path(path)
    tasks: list[Task] = []
    try:
        for n, record in iter_jsonl(path, torn_tail=False):
            try:
                answers = record["golden_answers"]
                answers = [answers] if isinstance(answers, str) else [str(a) for a in answers]
                tasks.append(
                    Task(
                        id=str(record.get("id", f"q{n}")),
                        question=str(record["question"]),
                        kind="qa",
                        language=str(record.get("language", "en")),
                        golden_answers=answers,
                    )
                )
            except (KeyError, TypeError, AttributeError) as e:
                raise DataError(
                    f"{path}:{n}: not a QA record with question/golden_answers ({e!r})"
                ) from e
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read QA file ({e})") from e
    return tasks
