"""The gateway's configuration files: a Caddyfile and the files it imports (deploy/caddy/), as Caddy reads them."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CADDYFILE = DEPLOY / "Caddyfile"
PRODUCTION_CADDYFILE = DEPLOY / "Caddyfile.production"

# `import <file or snippet> [args…]` at the start of a line; a file is named by a path (Caddy reads it relative
# to the file the import is in), a snippet by a bare name.
IMPORT = re.compile(r"^\s*import\s+(\S+)", re.M)
PLACEHOLDER = re.compile(r"\{\$[^}]*\}")


def config_files(caddyfile: Path) -> dict[str, Path]:
    """`caddyfile` and every file it imports, directly or not, by their paths relative to its folder."""
    found = {caddyfile.name: caddyfile}
    pending = [caddyfile]
    while pending:
        current = pending.pop()
        for target in IMPORT.findall(current.read_text()):
            if "/" not in target and not target.endswith(".caddy"):
                continue  # a snippet
            # A name chosen by a variable (`tracing-{$VAR:off}.caddy`): every file it may name.
            choices = sorted(current.parent.glob(PLACEHOLDER.sub("*", target))) if "{$" in target else []
            for path in choices or [(current.parent / target).resolve()]:
                assert path.is_file(), f"{current} imports {target}, which does not exist"
                relative = path.resolve().relative_to(caddyfile.parent.resolve()).as_posix()
                if relative not in found:
                    found[relative] = path
                    pending.append(path)
    return found


def config_text(caddyfile: Path) -> str:
    """All the text Caddy reads for `caddyfile`: what it says and what it imports."""
    return "\n".join(path.read_text() for path in config_files(caddyfile).values())
