"""The ``avtoolkit`` command: thin subcommands over library functions."""
