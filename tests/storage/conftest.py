"""Files kept in an object store: django-storages' S3 client against a fake S3 server."""

from dataclasses import dataclass

import pytest

from tests.storage.fake_s3 import BACKEND, FakeS3


@pytest.fixture(scope="session")
def fake_s3():
    server = FakeS3().start()
    yield server
    server.stop()


@dataclass
class Bucket:
    s3: FakeS3
    name: str

    def keys(self) -> list[str]:
        return self.s3.keys(self.name)

    def read(self, key: str) -> bytes:
        return self.s3.read(self.name, key)


@pytest.fixture
def bucket(fake_s3, settings, tmp_path):
    """The file storage is a bucket of the fake S3 server, and MEDIA_ROOT a directory that each
    test checks stays empty: nothing a request needs is left on this server's disk."""
    name = fake_s3.bucket()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": BACKEND, "OPTIONS": fake_s3.options(name)},
    }
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return Bucket(fake_s3, name)
