"""citypair's open data as a Frictionless Data Package: its tables, licences and sources, and a DCAT-AP entry.

The package is the contract between the services that serve its resources and whoever reads them, as event
schemas are: profiles serves the cities and their partnerships and the descriptor, pilot_zones its pilot zones,
each from its own database, all under /api/v1/open-data/ (the gateway routes them). Resource paths are relative
to the descriptor, so the same descriptor describes the served package and a copy of it on disk
(`citypair open-data export DIR`). No I/O of its own: the services hand it their rows.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

from citypair_shared.geography import CORRIDORS, INDICATORS
from citypair_shared.spreadsheet import csv_text
from citypair_shared.themes import THEME_IDS

PACKAGE_NAME = "citypair-open-data"
BASE_PATH = "/api/v1/open-data"  # where the gateway serves the descriptor and, beside it, each resource
LIST_SEPARATOR = "|"
PUBLIC_PILOT_ZONE_STATES = ("approved", "active", "completed")

CC_BY = {
    "name": "CC-BY-4.0",
    "path": "https://creativecommons.org/licenses/by/4.0/",
    "title": "Creative Commons Attribution 4.0 International",
}
CC_BY_SA = {
    "name": "CC-BY-SA-4.0",
    "path": "https://creativecommons.org/licenses/by-sa/4.0/",
    "title": "Creative Commons Attribution-ShareAlike 4.0 International",
}
CITYPAIR_SOURCE = {"title": "citypair: the cities' own profiles and the programme's pilot zones"}
GEONAMES_SOURCE = {
    "title": "GeoNames (names, coordinates, populations, time zones of the demo directory), CC BY 4.0",
    "path": "https://www.geonames.org/",
}
TWIN_CITIES_SOURCE = {
    "title": 'Wikipedia contributors, "List of twin towns and sister cities" pages (CC BY-SA 4.0), '
    "as collected by the Hekman/twincities project (MIT)",
    "path": "https://github.com/Hekman/twincities",
}


def _list(description: str) -> dict:
    return {"type": "string", "description": f"{description}, separated by {LIST_SEPARATOR}"}


def _field(name: str, type_: str, description: str, **constraints) -> dict:
    field = {"name": name, "type": type_, "description": description}
    return field | ({"constraints": constraints} if constraints else {})


ID = {"required": True, "unique": True}
CITY_FIELDS = [
    _field("id", "string", "citypair's id of the city", **ID),
    _field("name", "string", "Name", required=True),
    _field("country_code", "string", "ISO 3166-1 alpha-2 country code", required=True, pattern="[A-Z]{2}"),
    _field("local_name", "string", "Name in the local language"),
    {"name": "alternate_names", **_list("Other names")},
    _field("admin_region", "string", "Province, state or region"),
    _field("latitude", "number", "Latitude (WGS 84)", minimum=-90, maximum=90),
    _field("longitude", "number", "Longitude (WGS 84)", minimum=-180, maximum=180),
    _field("population", "integer", "Population", minimum=0),
    _field("timezone", "string", "IANA time zone"),
    _field("geonames_id", "integer", "GeoNames id", minimum=1),
    {"name": "languages", **_list("ISO 639-1 language codes")},
    {"name": "corridors", **_list(f"Belt and Road corridors ({', '.join(CORRIDORS)})")},
    _field("capacity", "integer", "Active partnerships the city can carry", minimum=0),
    {"name": "preferred_countries", **_list("Countries the city prefers partners in (ISO 3166-1 alpha-2)")},
    {"name": "excluded_countries", **_list("Countries the city does not seek partners in (ISO 3166-1 alpha-2)")},
    _field("demo", "boolean", "Theme levels and indicators are generated demo data, not facts"),
    *(
        _field(f"{side}_{theme}", "integer", f"What the city {verb} in the theme {theme}, 0–5", minimum=0, maximum=5)
        for theme in THEME_IDS
        for side, verb in (("offer", "offers"), ("need", "needs"))
    ),
    *(
        f
        for key, (label, unit, low, high) in INDICATORS.items()
        for f in (
            _field(key, "number", f"{label} ({unit})", minimum=low, maximum=high),
            _field(f"{key}_year", "integer", f"Year of {key}", minimum=1990, maximum=2100),
        )
    ),
]
PILOT_ZONE_FIELDS = [
    _field("id", "string", "citypair's id of the pilot zone", **ID),
    _field("title", "string", "Title", required=True),
    _field("status", "string", "Workflow status", required=True, enum=list(PUBLIC_PILOT_ZONE_STATES)),
    _field("lead_city_id", "string", "The lead city's id (a city of the cities resource)", required=True),
    {"name": "city_ids", **_list("Member cities' ids")},
    {"name": "city_names", **_list("Member cities' names, in the order of city_ids")},
    {"name": "country_codes", **_list("Member cities' countries, in the order of city_ids")},
    {"name": "themes", **_list("Cooperation themes")},
    _field("start_date", "date", "Start date"),
    _field("end_date", "date", "End date"),
    _field("budget_amount", "number", "Budget, where the proposers made it public", minimum=0),
    _field("budget_currency", "string", "ISO 4217 currency of the budget", pattern="[A-Z]{3}"),
]
PARTNERSHIP_FIELDS = [
    _field("city_a", "string", "One city's id (the smaller of the two)", required=True),
    _field("city_b", "string", "The other city's id", required=True),
    _field("source", "string", "Where the partnership was recorded from (twin_cities: Wikipedia)", required=True),
]
CITY_COLUMNS = tuple(f["name"] for f in CITY_FIELDS)
PILOT_ZONE_COLUMNS = tuple(f["name"] for f in PILOT_ZONE_FIELDS)
PARTNERSHIP_COLUMNS = tuple(f["name"] for f in PARTNERSHIP_FIELDS)

# name -> (title, fields, primary key, foreign keys, licences, sources)
TABLES = {
    "cities": (
        "Published cities: id, name and country, and the fields each city chose to make public",
        CITY_FIELDS,
        ["id"],
        [],
        [CC_BY],
        [CITYPAIR_SOURCE, GEONAMES_SOURCE],
    ),
    "partnerships": (
        "Existing partnerships between published cities, of cities that made their partners public",
        PARTNERSHIP_FIELDS,
        ["city_a", "city_b"],
        [
            {"fields": "city_a", "reference": {"resource": "cities", "fields": "id"}},
            {"fields": "city_b", "reference": {"resource": "cities", "fields": "id"}},
        ],
        [CC_BY_SA],
        [TWIN_CITIES_SOURCE, CITYPAIR_SOURCE],
    ),
    "pilot-zones": (
        "Approved, active and completed Digital Silk Road pilot zones: members, themes, dates, a public budget",
        PILOT_ZONE_FIELDS,
        ["id"],
        [{"fields": "lead_city_id", "reference": {"resource": "cities", "fields": "id"}}],
        [CC_BY],
        [CITYPAIR_SOURCE],
    ),
}
FORMATS = {"csv": "text/csv", "json": "application/json"}


def resource_name(table: str, format: str) -> str:
    """The CSV file is the table's resource; the JSON one its `-json` twin (foreign keys point at the CSV)."""
    return table if format == "csv" else f"{table}-json"


def _resource(table: str, format: str) -> dict:
    title, fields, key, foreign, licenses, sources = TABLES[table]
    schema = {"fields": fields, "primaryKey": key}
    resource = {
        "name": resource_name(table, format),
        "path": f"{table}.{format}",
        "title": title,
        "format": format,
        "mediatype": FORMATS[format],
        "encoding": "utf-8",
        "licenses": licenses,
        "sources": sources,
    }
    tabular = {"profile": "tabular-data-resource", "type": "table"}
    if format == "csv":
        return resource | tabular | {"schema": schema | {"foreignKeys": foreign}}
    # The same rows as a JSON array of objects keyed by the CSV's columns, typed as its Table Schema says: a table
    # too, which frictionless reads with its JSON plugin (`frictionless[json]`) and checks as it checks the CSV.
    return (
        resource
        | tabular
        | {
            "description": f"The rows of {table}.csv as a JSON array of objects keyed by its Table Schema's fields",
            "schema": schema,
        }
    )


def descriptor() -> dict:
    """The Data Package descriptor (datapackage.json): each table as a CSV and a JSON resource, with its Table
    Schema, licences and sources; the paths are relative to the descriptor."""
    resources = [_resource(table, format) for table in TABLES for format in FORMATS]
    return {
        "profile": "data-package",
        "name": PACKAGE_NAME,
        "title": "citypair open data: Digital Silk Road city pairs and pilot zones",
        "description": (
            "Cities taking part in city-pair cooperation on the Digital Silk Road (each publishes its id, name and "
            "country, and the profile fields it chooses), the partnerships between them, and the pilot zones "
            "approved, active or completed. Partnerships from Wikipedia's lists of twin towns and sister cities are "
            'CC BY-SA 4.0: credit "Wikipedia contributors"; the rest is CC BY 4.0: credit "citypair".'
        ),
        "homepage": f"{BASE_PATH}/datapackage.json",
        "keywords": ["Belt and Road", "Digital Silk Road", "city pairs", "twin cities", "pilot zones"],
        "licenses": [CC_BY, CC_BY_SA],
        "sources": [CITYPAIR_SOURCE, GEONAMES_SOURCE, TWIN_CITIES_SOURCE],
        "contributors": [{"title": "citypair", "role": "publisher"}],
        "resources": resources,
    }


def dcat_entry() -> dict:
    """The dataset as a DCAT-AP `dcat:Dataset` (JSON-LD), a distribution per resource file. Its IRIs are relative
    to the document (JSON-LD resolves them against where it was read: the gateway or a copy on disk)."""
    distributions = [
        {
            "@id": f"{table}.{format}",
            "@type": "dcat:Distribution",
            "dct:title": f"{table} ({format.upper()})",
            "dct:description": TABLES[table][0],
            "dcat:accessURL": {"@id": f"{table}.{format}"},
            "dcat:downloadURL": {"@id": f"{table}.{format}"},
            "dcat:mediaType": {"@id": f"http://www.iana.org/assignments/media-types/{media}"},
            "dct:format": {"@id": f"http://publications.europa.eu/resource/authority/file-type/{format.upper()}"},
            "dct:license": {"@id": TABLES[table][4][0]["path"]},
            "dct:conformsTo": {"@id": "datapackage.json"},
        }
        for table in TABLES
        for format, media in FORMATS.items()
    ]
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
        },
        "@id": "dcat.jsonld#dataset",
        "@type": "dcat:Dataset",
        "dct:identifier": PACKAGE_NAME,
        "dct:title": descriptor()["title"],
        "dct:description": descriptor()["description"],
        "dcat:keyword": descriptor()["keywords"],
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": "citypair"},
        "dct:license": {"@id": CC_BY["path"]},
        "dct:source": [{"@id": s["path"]} for s in (GEONAMES_SOURCE, TWIN_CITIES_SOURCE)],
        "dcat:landingPage": {"@id": "datapackage.json"},
        "dcat:distribution": distributions,
    }


def table_rows(columns: Sequence[str], rows: Iterable[Mapping]) -> list[dict]:
    """Rows with exactly `columns`, None where a row has nothing: what both a CSV line and a JSON item hold."""
    return [{c: row.get(c) for c in columns} for row in rows]


def csv_lines(columns: Sequence[str], rows: Iterable[Mapping], *, header: bool = False) -> str:
    """Rows as CSV (formulas defused, as every CSV citypair writes)."""
    return csv_text(columns, [{c: "" if v is None else v for c, v in row.items()} for row in rows], header=header)


def json_items(columns: Sequence[str], rows: Iterable[Mapping]) -> str:
    """Rows as the items of a JSON array (without its brackets), keyed by column."""
    return ",".join(json.dumps(row, ensure_ascii=False) for row in table_rows(columns, rows))


async def stream_table(
    columns: Sequence[str], batches: AsyncIterator[list[Mapping]], format: str
) -> AsyncIterator[str]:
    """A table's rows, a batch at a time, as CSV (with its header) or a JSON array; each batch written in a worker
    thread."""
    if format == "csv":
        yield csv_lines(columns, [], header=True)
        async for batch in batches:
            yield await asyncio.to_thread(csv_lines, columns, table_rows(columns, batch))
        return
    separator = "["
    async for batch in batches:
        if batch:
            yield separator + await asyncio.to_thread(json_items, columns, batch)
            separator = ","
    yield "[]" if separator == "[" else "]"
