"""A local server that speaks S3 (moto's, in a thread of this process), for the tests and
bench/two_servers.py: the real client library (boto3, under django-storages) talks HTTP to it,
offline, on a free port."""

import logging
import uuid

import boto3
from moto.server import ThreadedMotoServer

REGION = "eu-west-3"
# moto accepts any keys; given explicitly, boto3 never looks for the machine's own.
ACCESS_KEY, SECRET_KEY = "fake-access-key", "fake-secret-key"
BACKEND = "core.storage.ObjectStorage"


class FakeS3:
    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint_url = ""

    def start(self) -> "FakeS3":
        # werkzeug (moto's HTTP server, nothing else here) would log each request at INFO.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self) -> str:
        """A new empty bucket: each test its own, so none sees another's files."""
        name = f"aidwallet-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return name

    def options(self, bucket: str) -> dict[str, str]:
        """FILE_STORAGE_OPTIONS for this bucket, as a production sets them for its own."""
        return {
            "bucket_name": bucket,
            "endpoint_url": self.endpoint_url,
            "region_name": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
        }

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        return self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
