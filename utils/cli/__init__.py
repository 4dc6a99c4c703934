"""The command-line layer: errors as one line, flags derived from the typed configs."""
