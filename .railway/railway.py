"""Railway Infrastructure as Code entry for this repository.

``railway config plan`` / ``railway config apply`` find this file and run it
with the ``python3`` first on ``PATH`` (use ``uv run railway config plan`` so
that is the workspace's Python, which has ``railway-sdk``). The definition
itself lives in ``infra/railway/railway_project.py``; this file only chooses
the options of this deployment.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

_DEFINITION = Path(__file__).resolve().parent.parent / "infra" / "railway" / "railway_project.py"
_MODULE_NAME = "roadmap_railway_project"

# Add the optional roadmap-flower service (Celery Flower behind basic auth).
WITH_FLOWER = False
# Custom domains for roadmap-api, e.g. ("api.example.com",). The Railway-provided
# domain is created once with `railway domain --service roadmap-api --port 8080`.
API_CUSTOM_DOMAINS: tuple[str, ...] = ()
# "owner/name" to let Railway deploy on push (watch patterns filter per service);
# leave None when the GitHub workflows deploy with `railway up`.
GITHUB_REPO: str | None = None


def _definition() -> ModuleType:
    loaded = sys.modules.get(_MODULE_NAME)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(_MODULE_NAME, _DEFINITION)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the Railway definition from {_DEFINITION}")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so dataclasses can resolve the module's annotations.
    sys.modules[_MODULE_NAME] = module
    spec.loader.exec_module(module)
    return module


def main(ctx: Any = None) -> Any:
    definition = _definition()
    options = definition.Options(
        with_flower=WITH_FLOWER, api_custom_domains=API_CUSTOM_DOMAINS, github_repo=GITHUB_REPO
    )
    return definition.build_project(ctx, options)
