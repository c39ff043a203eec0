"""The national company register (INSEE's API Sirene): what it says of an establishment, from
its SIRET, so that a shop registering does not type what the State already knows.

A small client, pluggable by settings: SIRENE_CLIENT names the class (this one by default),
SIRENE_API_BASE and SIRENE_API_KEY where and how it asks (the key of INSEE's API portal, sent in
the X-INSEE-Api-Key-Integration header). Without a key there is no register: `sirene_client()`
returns None and the shop types its details itself. Any failure of the register (down, slow,
unknown SIRET) reads as "not found": registering never depends on it."""

import logging
from dataclasses import dataclass

import requests
from django.conf import settings
from django.utils.module_loading import import_string

from core.outbound import OutboundSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Establishment:
    siret: str
    legal_name: str
    trade_name: str
    address: str
    postcode: str
    city: str
    commune_code: str
    naf: str
    active: bool


def _legal_name(unit: dict) -> str:
    # A company has a name; a sole trader is a person: first name and surname.
    if unit.get("denominationUniteLegale"):
        return unit["denominationUniteLegale"]
    person = [
        unit.get("prenomUsuelUniteLegale") or unit.get("prenom1UniteLegale"),
        unit.get("nomUsageUniteLegale") or unit.get("nomUniteLegale"),
    ]
    return " ".join(part for part in person if part)


def establishment_from_sirene(data: dict) -> Establishment:
    """An establishment from API Sirene's answer to GET /siret/{siret} (its JSON format)."""
    body = data["etablissement"]
    unit = body.get("uniteLegale") or {}
    place = body.get("adresseEtablissement") or {}
    # The current period comes first in Sirene's answers.
    period = (body.get("periodesEtablissement") or [{}])[0]
    street = [
        place.get(key)
        for key in (
            "numeroVoieEtablissement",
            "indiceRepetitionEtablissement",
            "typeVoieEtablissement",
            "libelleVoieEtablissement",
        )
    ]
    legal_name = _legal_name(unit)
    trade_name = (
        period.get("enseigne1Etablissement")
        or period.get("denominationUsuelleEtablissement")
        or unit.get("denominationUsuelle1UniteLegale")
        or legal_name
    )
    return Establishment(
        siret=body["siret"],
        legal_name=legal_name,
        trade_name=trade_name,
        address=" ".join(part for part in street if part),
        postcode=place.get("codePostalEtablissement") or "",
        city=place.get("libelleCommuneEtablissement") or "",
        commune_code=place.get("codeCommuneEtablissement") or "",
        naf=period.get("activitePrincipaleEtablissement")
        or unit.get("activitePrincipaleUniteLegale")
        or "",
        active=period.get("etatAdministratifEtablissement", "A") == "A",
    )


class SireneClient:
    """Asks API Sirene over HTTPS, with a deadline: a registering shop waits a few seconds at
    most."""

    def __init__(self, *, base_url: str, api_key: str, deadline: float = 5.0):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.deadline = deadline

    def establishment(self, siret: str) -> Establishment | None:
        session = OutboundSession(deadline=self.deadline)
        try:
            response = session.get(
                f"{self.base_url}/siret/{siret}",
                headers={"X-INSEE-Api-Key-Integration": self.api_key, "Accept": "application/json"},
                timeout=(3, self.deadline),
            )
            if response.status_code != 200:
                if response.status_code != 404:
                    logger.warning("API Sirene answered %s", response.status_code)
                return None
            return establishment_from_sirene(response.json())
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            logger.warning("API Sirene could not be read: %s", exc.__class__.__name__)
            return None
        finally:
            session.close()


def sirene_client() -> SireneClient | None:
    """The configured register, or None when there is none (no key)."""
    if not settings.SIRENE_API_KEY:
        return None
    cls = import_string(settings.SIRENE_CLIENT)
    return cls(base_url=settings.SIRENE_API_BASE, api_key=settings.SIRENE_API_KEY)
