"""The ``modelreg`` command-line interface."""
