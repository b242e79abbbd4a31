"""Notebooks under tests/fixtures are inputs of the grader's tests (some are attacks that must fail), not
chapters: nbval must not execute them when the suite runs `pytest tests chapters --nbval-lax`."""
collect_ignore_glob = ["fixtures/*.ipynb"]
