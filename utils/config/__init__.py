"""Typed, frozen run configuration: the one place every default is declared."""
