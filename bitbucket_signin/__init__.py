"""Sign in with Bitbucket Cloud for Flask, with people from a Backstage-style catalog."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import CatalogError, ConfigError, ConflictError, NotFoundError, SignInError
from .extension import BitbucketSignIn, get_state
from .profile import BitbucketProfile
from .session import CatalogUser

__all__ = [
    "BitbucketProfile",
    "BitbucketSignIn",
    "CatalogError",
    "CatalogUser",
    "ConfigError",
    "ConflictError",
    "NotFoundError",
    "SignInError",
    "__version__",
    "get_state",
]
