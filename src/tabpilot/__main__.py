"""`python -m tabpilot ...` is `tabpilot ...`."""

from tabpilot.cli import entry

entry()
