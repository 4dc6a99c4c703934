"""The command-line layer: every script's parser (flags derived from the typed configs), errors as one line, the
generated flag reference."""
