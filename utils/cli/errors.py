"""Entry-point helper: user errors (bad files, bad values) end with one clear line and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run_cli(main: Callable[[], int]) -> None:
    """Run a script's `main`; OSError/ValueError print `error: <message>` instead of a traceback."""
    try:
        code = main()
    except (OSError, ValueError) as error:  # FileNotFoundError is an OSError
        print(f"error: {error}", file=sys.stderr)
        code = 2
    sys.exit(code)
