from django.core.management import call_command


def test_the_merchant_api_schema_generates_without_warnings(tmp_path):
    schema = tmp_path / "schema.yml"
    call_command("spectacular", urlconf="merchants.urls", fail_on_warn=True, file=str(schema))
    text = schema.read_text()
    assert "/authorizations/{reference}:" in text
    assert "merchantApiKey" in text
