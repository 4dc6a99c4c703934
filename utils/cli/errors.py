"""Entry-point helper: the library's messages shown, and user errors (bad files, bad values) ending with one clear
line and exit code 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable


def show_library_messages() -> None:
    """The library's warnings and progress notes (skipped files, time budget) on stderr, one plain line each."""
    logging.basicConfig(format="%(message)s")
    logging.getLogger("utils").setLevel(logging.INFO)


def run_cli(main: Callable[[], int]) -> None:
    """Run a script's `main`; OSError/ValueError print `error: <message>` instead of a traceback."""
    show_library_messages()
    try:
        code = main()
    except (OSError, ValueError) as error:  # FileNotFoundError is an OSError
        print(f"error: {error}", file=sys.stderr)
        code = 2
    sys.exit(code)
