"""Typed, frozen configs, the one place every setting and its default is declared: training (`run_config`),
inference (`detect_config`), evaluation reports (`report_config`), and how settings are declared and checked
(`settings`)."""
