"""`citypair open-data export DIR`: the open data as published, copied into a directory and validated.

The copy is the Data Package the gateway serves at /api/v1/open-data/datapackage.json (no sign-in): the
descriptor, every resource beside it, and the DCAT-AP entry. Its paths are relative, so the directory is a
package of its own: `frictionless validate DIR/datapackage.json`.
"""

from pathlib import Path

import httpx
import typer
from frictionless import Package

from citypair_shared.open_data import BASE_PATH

open_data_app = typer.Typer(help="The open data as a Frictionless Data Package.", no_args_is_help=True)
DESCRIPTOR = "datapackage.json"
DCAT = "dcat.jsonld"


def download(gateway: str, directory: Path) -> list[Path]:
    """Write the descriptor, each of its resources and the DCAT entry into `directory`; returns the files."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with httpx.Client(base_url=gateway, timeout=600) as client:
        descriptor = client.get(f"{BASE_PATH}/{DESCRIPTOR}").raise_for_status().json()
        for name in [DESCRIPTOR, DCAT, *(resource["path"] for resource in descriptor["resources"])]:
            target = directory / name
            with client.stream("GET", f"{BASE_PATH}/{name}") as response, target.open("wb") as out:
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    out.write(chunk)
            written.append(target)
    return written


def validate(directory: Path) -> list[str]:
    """What frictionless finds wrong with the package in `directory` ([] if nothing): every table, CSV and JSON,
    with its Table Schema, keys and foreign keys."""
    report = Package(str(directory / DESCRIPTOR)).validate()
    found = []
    for task in report.tasks:
        for error in task.errors:
            row, field = getattr(error, "row_number", None), getattr(error, "field_name", None)
            where = ", ".join(str(x) for x in (f"row {row}" if row else None, field) if x)
            found.append(f"{task.name} {where}: {error.note}" if where else f"{task.name}: {error.note}")
    return found


@open_data_app.command("export")
def export_command(
    directory: Path = typer.Argument(..., file_okay=False, help="Where to write the package"),
    gateway: str = typer.Option("http://127.0.0.1:18080", envvar="CITYPAIR_GATEWAY_URL", help="Gateway URL"),
    check: bool = typer.Option(True, "--validate/--no-validate", help="Validate the package with frictionless"),
) -> None:
    """Copy the published open data (descriptor, resources, DCAT entry) into DIRECTORY and validate it."""
    for path in download(gateway, directory):
        typer.echo(f"wrote {path}")
    if check:
        if errors := validate(directory):
            for error in errors:
                typer.secho(error, fg="red", err=True)
            raise typer.Exit(1)
        typer.echo("valid: frictionless found no error")
