"""Where a pocket of aid can be spent: the shops that accept it, nearest first."""

from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

from beneficiary_app import selectors
from beneficiary_app.api.base import ERROR_EXAMPLE, ERRORS, LANGUAGE, AppApi


class PlaceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    category = serializers.CharField(help_text='What kind of shop: "food shops".')
    address = serializers.CharField()
    postcode = serializers.CharField()
    city = serializers.CharField()
    latitude = serializers.FloatField(allow_null=True)
    longitude = serializers.FloatField(allow_null=True)
    distance_km = serializers.FloatField(
        allow_null=True, help_text="From the position given; null without one."
    )


class OriginOutput(serializers.Serializer):
    latitude = serializers.FloatField()
    longitude = serializers.FloatField()


class PlacePageOutput(serializers.Serializer):
    origin = OriginOutput(
        allow_null=True,
        help_text="Where the distances are measured from: the position given, or roughly "
        "where the postcode is; null when neither is known.",
    )
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = PlaceOutput(many=True)


class Page(LimitOffsetPagination):
    default_limit = 25
    max_limit = 100


class PlaceListApi(AppApi):
    class PlaceQuery(serializers.Serializer):
        lat = serializers.FloatField(min_value=-90, max_value=90, required=False)
        lon = serializers.FloatField(min_value=-180, max_value=180, required=False)
        postcode = serializers.RegexField(r"^[0-9]{5}$", required=False)

        def validate(self, attrs):
            if ("lat" in attrs) != ("lon" in attrs):
                raise serializers.ValidationError({"lat": gettext("Send lat and lon together.")})
            return attrs

    @extend_schema(
        summary="Where this aid can be spent",
        operation_id="pockets_merchants_list",
        description="The shops that accept this pocket (its categories, shops and zone), "
        "nearest first, with their distance: from lat/lon, or from where the postcode is "
        "(roughly: the mean position of our merchants there). A postcode whose place is not "
        "known lists its own shops first, then its département's. Without either, the "
        "holder's postcode is used.",
        parameters=[
            OpenApiParameter("lat", float),
            OpenApiParameter("lon", float),
            OpenApiParameter("postcode", str, pattern=r"^[0-9]{5}$"),
            OpenApiParameter("limit", int),
            OpenApiParameter("offset", int),
            LANGUAGE,
        ],
        responses={200: PlacePageOutput, **ERRORS},
        examples=[
            OpenApiExample(
                "Nearby",
                response_only=True,
                value={
                    "origin": {"latitude": 45.1885, "longitude": 5.7245},
                    "count": 1,
                    "next": None,
                    "previous": None,
                    "results": [
                        {
                            "id": 42,
                            "name": "Épicerie du Vieux Temple",
                            "category": "commerces alimentaires",
                            "address": "4 rue du Vieux Temple",
                            "postcode": "38000",
                            "city": "Grenoble",
                            "latitude": 45.19302,
                            "longitude": 5.73086,
                            "distance_km": 0.8,
                        }
                    ],
                },
            ),
            ERROR_EXAMPLE,
        ],
    )
    def get(self, request, pocket_id: int):
        pocket = selectors.pocket_get(wallet=self.wallet, pocket_id=pocket_id)
        query = self.PlaceQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        latitude, longitude = params.get("lat"), params.get("lon")
        postcode = params.get("postcode") or self.beneficiary.postcode or None
        if latitude is None and postcode:
            latitude, longitude = selectors.postcode_position(postcode) or (None, None)
        places = selectors.places_to_spend(
            pocket=pocket, latitude=latitude, longitude=longitude, postcode=postcode
        )
        paginator = Page()
        page = paginator.paginate_queryset(places, request, view=self)
        results = [
            {
                "id": place.merchant.pk,
                "name": place.merchant.trade_name,
                "category": selectors.merchant_category_label(place.merchant.mcc),
                "address": place.merchant.address,
                "postcode": place.merchant.postcode,
                "city": place.merchant.city,
                "latitude": place.merchant.latitude,
                "longitude": place.merchant.longitude,
                "distance_km": (
                    round(place.distance_km, 2) if place.distance_km is not None else None
                ),
            }
            for place in page
        ]
        response = paginator.get_paginated_response(PlaceOutput(results, many=True).data)
        origin = None
        if latitude is not None:
            origin = {"latitude": round(latitude, 5), "longitude": round(longitude, 5)}
        response.data = {"origin": origin, **response.data}
        return response
