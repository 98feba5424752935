"""The org-scoped storage layout: where rawcore keeps what it makes, on a local folder or S3.

Every key starts with its organization (`keys.OrgLayout` builds them from validated ids only),
and both backends (`backends.FolderStorage`, `backends.S3Storage`) write atomically: an object
appears whole under its final key or not at all.
"""

from __future__ import annotations

from rawcore.storage.backends import FolderStorage, S3Storage, Storage, open_storage
from rawcore.storage.keys import OrgLayout, validate_id

__all__ = ["FolderStorage", "OrgLayout", "S3Storage", "Storage", "open_storage", "validate_id"]
