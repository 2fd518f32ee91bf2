"""Evaluation: WideSearch table scoring (faithful to the official scorer), QA scoring, judges.

Modules: `table_extract` (answer -> DataFrame), `widesearch_metrics` (per-cell preprocess and
metrics), `widesearch_scorer` (one answer -> `WideSearchScore`), `widesearch_data` (task and
gold loaders), `judges` (`Judge`, `OfflineJudge`, `LLMJudge`), `judge_client` / `judge_cache`
(OpenAI-compatible completer with retries and an on-disk cache), `response_scoring` (a file
of answers -> scores and summary), `qa_data` (QA task files), `qa_scorer` (EM / F1). The
loopback judge server that tests and bench/score.py use is a test double: it lives in
tests/fake_judge_server.py.
"""
