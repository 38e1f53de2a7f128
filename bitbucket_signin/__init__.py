"""Sign in with Bitbucket (Cloud, Data Center or both) for Flask, with people from a
Backstage-style catalog."""

from __future__ import annotations

from ._version import __version__
from .app_extension import get_extension
from .errors import CatalogError, ConfigError, ConflictError, NotFoundError, SignInError
from .extension import BitbucketSignIn
from .profile import BitbucketProfile
from .server_profile import ServerProfile
from .session import CatalogUser

__all__ = [
    "BitbucketProfile",
    "BitbucketSignIn",
    "CatalogError",
    "CatalogUser",
    "ConfigError",
    "ConflictError",
    "NotFoundError",
    "ServerProfile",
    "SignInError",
    "__version__",
    "get_extension",
]
