"""The object store (S3 or any server that speaks its API) that keeps the files every app server
and worker must share: funders' logos, the exports a task builds (see STORAGES in
config/settings.py and the README's deployment section)."""

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from storages.backends.s3 import S3Storage


class ObjectStorage(S3Storage):
    """django-storages' S3 storage that never replaces a file by another of the same name.

    Its default (AWS_S3_FILE_OVERWRITE) overwrites, unlike the file system's storage: two
    funders' "logo.png" would become one file, and a new logo would keep the URL that browsers
    cached the old one under (beneficiary_app.web.views.funder_logo_url names the file). Here a
    taken name gets a random suffix, as on the file system."""

    def __init__(self, **settings: Any) -> None:
        if settings.get("file_overwrite"):
            raise ImproperlyConfigured(
                "core.storage.ObjectStorage never overwrites a file: remove file_overwrite "
                "from FILE_STORAGE_OPTIONS."
            )
        super().__init__(**settings)

    def get_default_settings(self) -> dict[str, Any]:
        defaults: dict[str, Any] = super().get_default_settings()
        # max_memory_size: django-storages downloads a file whole before its first byte is
        # read, into memory by default (0: no limit). An export of a million rows (90 MB)
        # would sit in the app worker's memory; past this size it goes to a temporary file,
        # removed when the file is closed.
        return defaults | {"file_overwrite": False, "max_memory_size": MAX_MEMORY_SIZE}


MAX_MEMORY_SIZE = 8 * 1024 * 1024
