"""A client generated from docs/openapi.json by openapi-python-client builds every operation, offline."""

import json
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = ROOT / "docs" / "openapi.json"
GENERATOR_CONFIG = ROOT / "docs" / "openapi-python-client.yaml"
GENERATOR = ROOT / ".venv" / "bin" / "openapi-python-client"


def snake_case(operation_id: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def test_every_operation_gets_a_module(tmp_path):
    document = json.loads(OPENAPI_FILE.read_text())
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    command = [str(GENERATOR), "generate", "--path", str(OPENAPI_FILE), "--config", str(GENERATOR_CONFIG)]
    run = subprocess.run(
        [*command, "--meta", "none", "--output-path", str(tmp_path / "client")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout, run.stdout
    modules = {path.stem for path in (tmp_path / "client" / "api").rglob("*.py")}
    assert {snake_case(op_id) for op_id in operation_ids} <= modules, run.stdout
