"""Print the pinned requirements declared in pyproject.toml, one per line.

`python scripts/requirements.py` prints the runtime ones, `--dev` adds the dev ones. Lets the
Makefile and the Dockerfiles install from the one place the pins live, without building a wheel.
"""

import sys
import tomllib
from pathlib import Path


def pins(dev: bool) -> list[str]:
    """Return the runtime pins, plus the dev pins when asked."""
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())[
        "project"
    ]
    found = list(project["dependencies"])
    if dev:
        found += project["optional-dependencies"]["dev"]
    return found


if __name__ == "__main__":
    print("\n".join(pins("--dev" in sys.argv[1:])))
