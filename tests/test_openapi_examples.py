"""Every example the two API schemas show validates against its own schema, read strictly: an
integrator who copies one gets something the API could answer, field for field."""

import pytest

from tests.openapi_contract import APIS, StrictValidator, generate


@pytest.mark.parametrize("api", sorted(APIS))
def test_every_example_validates_against_its_schema(api, tmp_path):
    document = generate(api, tmp_path / "schema.yml")
    validator = StrictValidator(document)
    checked, failures = 0, []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            parts = [("request", operation.get("requestBody", {}))] + [
                (status, response) for status, response in operation["responses"].items()
            ]
            for where, part in parts:
                for media, content in part.get("content", {}).items():
                    for name, example in content.get("examples", {}).items():
                        checked += 1
                        failures += [
                            f"{method.upper()} {path} {where} {media} {name}: {error}"
                            for error in validator.errors(example["value"], content["schema"])
                        ]
    assert checked > 20
    assert failures == []
