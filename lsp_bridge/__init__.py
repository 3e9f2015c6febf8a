"""pairls language server: any LSP editor joins a pairls room."""

__version__ = "0.1.0"
