"""arrctl: a command-line monitor for an ML training pipeline that never hangs."""

__version__ = "0.1.0"
