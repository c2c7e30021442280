"""The ``lungcl`` command line: one module per group of subcommands."""
