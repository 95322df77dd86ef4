"""tabpilot: self-hosted, white-box AutoML for tables."""

from __future__ import annotations

__version__ = "0.1.0"

from tabpilot.errors import TabpilotError  # noqa: E402


def __getattr__(name: str):
    # the heavy API is imported lazily, so `import tabpilot` stays cheap
    if name in ("AutoML", "load_model"):
        from tabpilot import automl

        return getattr(automl, name)
    raise AttributeError(f"module 'tabpilot' has no attribute {name!r}")


__all__ = ["AutoML", "TabpilotError", "__version__", "load_model"]
