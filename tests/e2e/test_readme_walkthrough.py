"""The README's walkthrough, run as written against a real stack: the first commands a newcomer types must work.
(They once did not: the users' passwords broke the password policy, so every step after the second failed.)"""

import json
import re
import shutil
import subprocess
from pathlib import Path

from tests.support import ADMIN_EMAIL, ADMIN_PASSWORD

README = Path(__file__).resolve().parents[2] / "README.md"
WALKTHROUGH = re.compile(r"Then, in another terminal:\n\n```sh\n(.*?)\n```", re.S)
STACK_ADMIN = "admin@citypair.local"  # the admin `make run` creates; the test stack's is ADMIN_EMAIL


def walkthrough_for(gateway_url: str) -> str:
    """The README's block, pointed at this stack and its admin: each of the three is changed exactly once."""
    script = WALKTHROUGH.search(README.read_text()).group(1)
    for pattern, value in (
        (r"^API=.*$", f"API={gateway_url}/api/v1"),
        (r"^ADMIN_PASSWORD=.*$", f"ADMIN_PASSWORD='{ADMIN_PASSWORD}'"),
        (re.escape(STACK_ADMIN), ADMIN_EMAIL),
    ):
        script, changed = re.subn(pattern, value, script, flags=re.M)
        assert changed == 1, f"the walkthrough changed shape: {pattern} matched {changed} times"
    return script


def test_the_readme_walkthrough_runs_as_written(stack):
    assert shutil.which("curl"), "the walkthrough uses curl"
    run = subprocess.run(
        ["bash", "-c", walkthrough_for(stack.config.gateway_url)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    partners, *statuses, still, bad_input, no_token = run.stdout.strip().splitlines()
    names = [item["name"] for item in json.loads(partners)["items"]]
    assert names[0] == "Almaty (walk-through)", names
    assert statuses == ["submitted", "under_review", "approved"]
    assert still == "Almaty is no longer suggested"
    problem = json.loads(bad_input)
    assert problem["status"] == 422
    assert {e["field"] for e in problem["errors"]} == {"country_code", "latitude", "population"}
    assert json.loads(no_token)["status"] == 401
