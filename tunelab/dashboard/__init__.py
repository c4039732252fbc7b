"""A local, read-only web dashboard over a storage: ``tunelab dashboard`` (extra ``[dashboard]``)."""

from tunelab.dashboard.app import create_app, serve

__all__ = ["create_app", "serve"]
