"""NoChat: a self-hosted real-time chat server on Trio (Quart-Trio + Hypercorn)."""

__version__ = "0.1.0"
