"""The one error type for user mistakes: caught at the CLI/stage boundary and printed as one line."""


class UserError(Exception):
    """A problem the user can fix (bad file, missing weights, wrong param). Printed without a traceback."""
