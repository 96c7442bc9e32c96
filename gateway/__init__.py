"""The Hookline service: the only package that imports Litestar or asyncpg."""

from gateway.app import create_app
from gateway.settings import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "create_app", "load_settings"]
