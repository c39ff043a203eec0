import yaml
from django.core.management import call_command

from tests.beneficiary_app.conftest import API


def generate(path) -> dict:
    call_command(
        "spectacular",
        urlconf="beneficiary_app.urls",
        custom_settings="beneficiary_app.urls.SCHEMA_SETTINGS",
        fail_on_warn=True,
        validate=True,
        file=str(path),
    )
    return yaml.safe_load(path.read_text())


def test_the_app_api_schema_generates_without_warnings_and_is_valid(tmp_path):
    schema = generate(tmp_path / "schema.yml")

    assert schema["servers"] == [{"url": "/api/app/v1"}]
    assert "appToken" in schema["components"]["securitySchemes"]
    assert {"/auth/code", "/pockets/{pocket_id}/merchants", "/history/{reference}"} <= set(
        schema["paths"]
    )


def test_every_answer_with_a_body_documents_an_example(tmp_path):
    schema = generate(tmp_path / "schema.yml")
    missing = [
        f"{method.upper()} {path} {code}"
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for code, response in operation["responses"].items()
        if code.startswith("2")
        for content in response.get("content", {}).values()
        if "examples" not in content
    ]
    assert missing == []


def test_the_schema_is_served(client, db):
    response = client.get(f"{API}/schema")

    assert response.status_code == 200
    assert b"/pockets/{pocket_id}" in response.content


def test_a_refused_payment_documents_the_nearest_shops_with_an_example(tmp_path):
    schema = generate(tmp_path / "schema.yml")
    detail = schema["paths"]["/history/{reference}"]["get"]["responses"]["200"]
    content = detail["content"]["application/json"]
    [example] = content["examples"].values()
    properties = schema["components"]["schemas"]["PaymentDetailOutput"]["properties"]
    shop = schema["components"]["schemas"]["NearbyShopOutput"]["properties"]

    assert "nearby" in properties
    assert {"name", "distance_m", "distance_display"} <= set(shop)
    assert example["value"]["nearby"]["message"].startswith("Où utiliser cette aide près d")
    assert example["value"]["nearby"]["shops"][0]["distance_m"] == 450
