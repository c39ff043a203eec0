"""Where a merchant is: département from an INSEE commune code or a French postcode, distances.

Vocabulary: a *département* code is "01".."95" (with "2A" and "2B" for Corsica, never "20") or
"971".."976" overseas. The overseas collectivities that have their own INSEE code but are not
départements (Saint-Pierre-et-Miquelon 975, Saint-Barthélemy 977, Saint-Martin 978, and the
Pacific ones 986-988) are answered with that code too: for a zone or a holiday calendar they
behave like a département, and pretending they are in one would be wrong (Saint-Barthélemy and
Saint-Martin left Guadeloupe in 2007 even though their postcodes, 97133 and 97150, still start
with 971).
"""

import csv
import gzip
import io
import math
import re
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

# The 101 départements, by INSEE code. Names are proper nouns, written as on French maps.
DEPARTEMENTS: dict[str, str] = {
    "01": "Ain",
    "02": "Aisne",
    "03": "Allier",
    "04": "Alpes-de-Haute-Provence",
    "05": "Hautes-Alpes",
    "06": "Alpes-Maritimes",
    "07": "Ardèche",
    "08": "Ardennes",
    "09": "Ariège",
    "10": "Aube",
    "11": "Aude",
    "12": "Aveyron",
    "13": "Bouches-du-Rhône",
    "14": "Calvados",
    "15": "Cantal",
    "16": "Charente",
    "17": "Charente-Maritime",
    "18": "Cher",
    "19": "Corrèze",
    "2A": "Corse-du-Sud",
    "2B": "Haute-Corse",
    "21": "Côte-d'Or",
    "22": "Côtes-d'Armor",
    "23": "Creuse",
    "24": "Dordogne",
    "25": "Doubs",
    "26": "Drôme",
    "27": "Eure",
    "28": "Eure-et-Loir",
    "29": "Finistère",
    "30": "Gard",
    "31": "Haute-Garonne",
    "32": "Gers",
    "33": "Gironde",
    "34": "Hérault",
    "35": "Ille-et-Vilaine",
    "36": "Indre",
    "37": "Indre-et-Loire",
    "38": "Isère",
    "39": "Jura",
    "40": "Landes",
    "41": "Loir-et-Cher",
    "42": "Loire",
    "43": "Haute-Loire",
    "44": "Loire-Atlantique",
    "45": "Loiret",
    "46": "Lot",
    "47": "Lot-et-Garonne",
    "48": "Lozère",
    "49": "Maine-et-Loire",
    "50": "Manche",
    "51": "Marne",
    "52": "Haute-Marne",
    "53": "Mayenne",
    "54": "Meurthe-et-Moselle",
    "55": "Meuse",
    "56": "Morbihan",
    "57": "Moselle",
    "58": "Nièvre",
    "59": "Nord",
    "60": "Oise",
    "61": "Orne",
    "62": "Pas-de-Calais",
    "63": "Puy-de-Dôme",
    "64": "Pyrénées-Atlantiques",
    "65": "Hautes-Pyrénées",
    "66": "Pyrénées-Orientales",
    "67": "Bas-Rhin",
    "68": "Haut-Rhin",
    "69": "Rhône",
    "70": "Haute-Saône",
    "71": "Saône-et-Loire",
    "72": "Sarthe",
    "73": "Savoie",
    "74": "Haute-Savoie",
    "75": "Paris",
    "76": "Seine-Maritime",
    "77": "Seine-et-Marne",
    "78": "Yvelines",
    "79": "Deux-Sèvres",
    "80": "Somme",
    "81": "Tarn",
    "82": "Tarn-et-Garonne",
    "83": "Var",
    "84": "Vaucluse",
    "85": "Vendée",
    "86": "Vienne",
    "87": "Haute-Vienne",
    "88": "Vosges",
    "89": "Yonne",
    "90": "Territoire de Belfort",
    "91": "Essonne",
    "92": "Hauts-de-Seine",
    "93": "Seine-Saint-Denis",
    "94": "Val-de-Marne",
    "95": "Val-d'Oise",
    "971": "Guadeloupe",
    "972": "Martinique",
    "973": "Guyane",
    "974": "La Réunion",
    "976": "Mayotte",
}

# Overseas collectivities with an INSEE code of their own (not départements).
COLLECTIVITES: dict[str, str] = {
    "975": "Saint-Pierre-et-Miquelon",
    "977": "Saint-Barthélemy",
    "978": "Saint-Martin",
    "986": "Wallis-et-Futuna",
    "987": "Polynésie française",
    "988": "Nouvelle-Calédonie",
}

TERRITORY_NAMES: dict[str, str] = {**DEPARTEMENTS, **COLLECTIVITES}

# ISO 3166-1 gives French overseas territories their own alpha-2 codes, and card networks
# report either those or "FR". Both mean the French Republic for our rules.
FRENCH_COUNTRY_CODES = frozenset(
    {"FR", "GP", "MQ", "GF", "RE", "YT", "PM", "BL", "MF", "WF", "PF", "NC"}
)

# Postcodes that do not follow the "first digits are the territory" convention.
_POSTCODE_EXCEPTIONS = {"97133": "977", "97150": "978"}

_POSTCODE = re.compile(r"\d{5}")
_COMMUNE_CODE = re.compile(r"(\d{2}|2[AB])\d{3}")

# Mean Earth radius (IUGG), in kilometres: the haversine error it implies (< 0.5 %) is far
# below the precision of a funder's "10 km around the town hall".
EARTH_RADIUS_KM = 6371.0088


def is_french(country: str) -> bool:
    return country.upper() in FRENCH_COUNTRY_CODES


def departement_from_commune(commune_code: str) -> str | None:
    """The département (or overseas collectivity) of an INSEE commune code: "38185" -> "38",
    "2A004" -> "2A", "97105" -> "971", "97701" -> "977". None when the code is malformed or
    names no known territory."""
    code = commune_code.strip().upper()
    if not _COMMUNE_CODE.fullmatch(code):
        return None
    territory = code[:3] if code.startswith(("97", "98")) else code[:2]
    return territory if territory in TERRITORY_NAMES else None


def departement_from_postcode(postcode: str) -> str | None:
    """The département (or overseas collectivity) of a French postcode, by La Poste's
    convention: the first two digits, Corsica split at 20200 (200xx-201xx are Corse-du-Sud,
    202xx and 206xx Haute-Corse), the first three overseas, and Saint-Barthélemy / Saint-Martin
    by their own postcodes.

    A few border communes are served by a neighbouring département's post office (their
    postcode starts with the neighbour's number), so a commune code, when known, is the better
    source: MerchantPlace.departement prefers it. None for a malformed postcode and for the
    ranges that are not a French territory (Monaco's 980xx, military 00xxx)."""
    code = postcode.strip()
    if not _POSTCODE.fullmatch(code):
        return None
    if code in _POSTCODE_EXCEPTIONS:
        return _POSTCODE_EXCEPTIONS[code]
    if code.startswith("20"):
        return "2A" if code < "20200" else "2B"
    territory = code[:3] if code.startswith(("97", "98")) else code[:2]
    return territory if territory in TERRITORY_NAMES else None


# Public reference data, kept beside this module with its source and date (data/README.md).
_DATA = Path(__file__).with_name("data")


@cache
def _postcode_communes() -> dict[str, frozenset[str]]:
    with gzip.open(_DATA / "postcode_communes.csv.gz", "rt", encoding="utf-8") as rows:
        return {row["postcode"]: frozenset(row["communes"].split()) for row in csv.DictReader(rows)}


@cache
def _departement_neighbours() -> dict[str, frozenset[str]]:
    text = (_DATA / "departement_neighbours.csv").read_text("utf-8")
    return {
        row["departement"]: frozenset(row["neighbours"].split())
        for row in csv.DictReader(io.StringIO(text))
    }


def communes_of_postcode(postcode: str) -> frozenset[str]:
    """The INSEE codes of every commune a postcode serves, by La Poste's table: "38000" ->
    {"38185"}, "01400" -> ten communes. Paris, Lyon and Marseille are answered by their
    arrondissements ("75001" -> {"75101"}), as La Poste does. Empty for a postcode La Poste
    does not give to a commune (CEDEX codes, Monaco's 980xx) and for anything malformed."""
    return _postcode_communes().get(postcode.strip(), frozenset())


# The municipal arrondissements of Paris, Marseille and Lyon have INSEE codes of their own
# (75101-75120, 13201-13216, 69381-69389); a rule naming the city takes them all in.
_ARRONDISSEMENTS = (("751", "75056"), ("132", "13055"), ("6938", "69123"))


def commune_and_city(commune_code: str) -> tuple[str, ...]:
    """The commune, and the city it is an arrondissement of, if it is one: "13201" ->
    ("13201", "13055"); "38185" -> ("38185",)."""
    for prefix, city in _ARRONDISSEMENTS:
        if commune_code.startswith(prefix) and commune_code != city:
            return (commune_code, city)
    return (commune_code,)


def departement_neighbours(departement: str) -> frozenset[str]:
    """The départements that share a land border with this one: "2A" -> {"2B"}. Overseas
    départements and collectivities have none (data/README.md says how the table was made)."""
    return _departement_neighbours().get(departement, frozenset())


def territory_label(code: str) -> str:
    """ "Isère (38)": the name people know, with the number they see on number plates."""
    name = TERRITORY_NAMES.get(code)
    return f"{name} ({code})" if name else code


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS84 points, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


# Opening hours and public holidays are lived on the local clock: 08:00 in Saint-Denis de
# La Réunion is 05:00 or 06:00 in Paris. Metropolitan France (Corsica included) is Europe/Paris.
_TIME_ZONES = {
    "971": "America/Guadeloupe",
    "972": "America/Martinique",
    "973": "America/Cayenne",
    "974": "Indian/Reunion",
    "975": "America/Miquelon",
    "976": "Indian/Mayotte",
    "977": "America/St_Barthelemy",
    "978": "America/Marigot",
    "986": "Pacific/Wallis",
    "987": "Pacific/Tahiti",
    "988": "Pacific/Noumea",
}


def local_time_zone(departement: str | None) -> ZoneInfo:
    """The clock of a territory: its own overseas, Europe/Paris otherwise (and when unknown)."""
    return ZoneInfo(_TIME_ZONES.get(departement or "", "Europe/Paris"))
