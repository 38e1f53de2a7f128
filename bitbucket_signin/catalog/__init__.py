"""The Backstage-style catalog of ``User`` and ``Group`` entities.

- :mod:`.model`: the entities and :class:`Catalog`, their index;
- :mod:`.loader`: the generic Backstage loader and its validation;
- :mod:`.memo`: what a load made of a JSON file's entities, for the next load to reuse;
- :mod:`.bitbucket`: Bitbucket's annotation rules;
- :mod:`.store`: :func:`load_catalog` and :class:`CatalogStore`, which watches the files.
"""

from .bitbucket import (
    ACCOUNT_ID_ANNOTATION,
    USER_ID_ANNOTATION,
    USERNAME_ANNOTATION,
    annotation_value_key,
)
from .loader import DEFAULT_MAX_BYTES, MAX_ENTITIES, MAX_YAML_ALIASES, is_valid_name
from .model import Catalog, GroupEntity, UserEntity
from .store import CatalogStore, load_catalog

__all__ = [
    "ACCOUNT_ID_ANNOTATION",
    "DEFAULT_MAX_BYTES",
    "MAX_ENTITIES",
    "MAX_YAML_ALIASES",
    "USERNAME_ANNOTATION",
    "USER_ID_ANNOTATION",
    "Catalog",
    "CatalogStore",
    "GroupEntity",
    "UserEntity",
    "annotation_value_key",
    "is_valid_name",
    "load_catalog",
]
