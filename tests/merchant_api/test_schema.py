import yaml
from django.core.management import call_command


def test_the_merchant_api_schema_generates_without_warnings(tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", urlconf="merchant_api.urls", fail_on_warn=True, file=str(schema))
    text = schema.read_text()
    assert "/authorizations/{reference}:" in text
    assert "merchantApiKey" in text


def test_every_operation_documents_an_example(tmp_path):
    schema_file = tmp_path / "schema.yml"
    call_command("spectacular", urlconf="merchant_api.urls", file=str(schema_file))
    schema = yaml.safe_load(schema_file.read_text())
    missing = [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if not any(
            "examples" in content
            for response in operation["responses"].values()
            for content in response.get("content", {}).values()
        )
    ]
    assert missing == []
