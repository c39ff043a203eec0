"""The merchant API's error codes are an enum in its schema, each described, and every domain
error the API can raise has its code in it (merchant_api/errors.py): a code missing from the
enum would fail every strict client that meets it."""

import importlib
import pkgutil

import pytest

from core.errors import DomainError
from merchant_api.errors import error_codes
from tests.openapi_contract import generate

# The floors the merchant API reaches, down to core: a domain error defined there can reach it.
REACHABLE_PACKAGES = ["core", "ledger", "engine", "wallet", "merchants", "merchant_api"]

# Domain errors of those floors that the merchant API never answers, and why.
NEVER_ANSWERED = {
    "insufficient_funds": "the engine declines (decline.code insufficient_funds), no error",
    "wallet_frozen": "a frozen wallet is a decline (decline.code wallet_frozen)",
    "currency_mismatch": "ledger accounts' currency: the engine declines currency_not_supported",
    "unknown_account": "ledger accounts are never named by a merchant",
    "invalid_request": "HoldAlreadyResolved's base code: its own codes are set per instance",
    "payment_code_unavailable": "issuing a payment code is the beneficiary app's",
    "settlement_period_closed": "settlements are closed by the nightly job, not by the API",
}


def domain_errors() -> set[type[DomainError]]:
    for package in REACHABLE_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if ".migrations" not in info.name:
                importlib.import_module(info.name)
    found, stack = set(), [DomainError]
    while stack:
        for subclass in stack.pop().__subclasses__():
            stack.append(subclass)
            if subclass.__module__.split(".")[0] in REACHABLE_PACKAGES:
                found.add(subclass)
    return found


def test_every_domain_error_the_api_can_raise_has_its_code_in_the_registry():
    registry = dict(error_codes())
    missing = {
        f"{error.__module__}.{error.__name__}: {error.code}"
        for error in domain_errors()
        if error.code not in registry and error.code not in NEVER_ANSWERED
    }
    assert not missing, "add these codes to merchant_api/errors.py or to NEVER_ANSWERED"
    assert not set(NEVER_ANSWERED) - {"invalid_request"} & set(registry)


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    return generate("merchant", tmp_path_factory.mktemp("schema") / "merchant.yaml")


def test_the_schema_gives_error_codes_as_a_described_enum(schema):
    components = schema["components"]["schemas"]
    code = components["MerchantErrorDetail"]["properties"]["code"]
    enum = components[code["$ref"].rsplit("/", 1)[1]] if "$ref" in code else code

    assert set(enum["enum"]) == {code for code, _ in error_codes()}
    for code, description in error_codes():
        assert f"`{code}` - {description}" in enum["description"]
    every_error = [
        response["content"]["application/json"]["schema"]
        for operations in schema["paths"].values()
        for operation in operations.values()
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5"))
    ]
    assert every_error and all(
        error == {"$ref": "#/components/schemas/MerchantError"} for error in every_error
    )
