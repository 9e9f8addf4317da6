"""The one error type of the scoring job."""

from __future__ import annotations

__all__ = ["ScoreError"]


class ScoreError(Exception):
    """A problem with a file of the job: ``fastlstm score`` reports ``path: problem``.

    ``exit_code`` is 2 for bad input or arguments (the default) and 1 for a
    failure to write the output (a full disk, say).
    """

    def __init__(self, path: str, problem: str, exit_code: int = 2) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
        self.exit_code = exit_code
