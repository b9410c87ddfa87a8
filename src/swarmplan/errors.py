"""The one exception type for errors a user can cause (see DESIGN: Conventions)."""


class SwarmplanError(Exception):
    """A problem with the user's input: names the offending field and what to change.

    The CLI prints ``str(err)`` without a traceback and exits with status 2.
    """

    def __init__(self, field: str, problem: str, fix: str = ""):
        self.field = field
        self.problem = problem
        self.fix = fix
        text = f"{field}: {problem}" if field else problem
        if fix:
            text += f" — {fix}"
        super().__init__(text)

    def __reduce__(self):
        # Rebuild from the three parts, so the error survives a trip back from a worker process.
        return (type(self), (self.field, self.problem, self.fix))


class NoSolutionError(SwarmplanError):
    """The input is valid but has no solution: e.g. memory cannot hold the model, or no placement gives R
    concurrent requests room. Same one-line message and exit status 2, but the fix is a different input,
    not a corrected one."""
