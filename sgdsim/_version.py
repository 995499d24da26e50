"""The package version, in a module of its own so that sgdsim's modules can import it without
importing the package ``__init__`` (and everything it pulls in)."""

__version__ = "0.2.0"
