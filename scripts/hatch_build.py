"""Refuses to build a wheel or an sdist without the built frontend, which the package
cannot work without: run ``npm ci && npm run build`` (or ``bash scripts/setup.sh``)
first. An editable install reads the files from the checkout, so it needs none yet."""
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        if self.target_name == "wheel" and version == "editable":
            return
        bundle = Path(self.root) / "cnn_widgets" / "bundle"
        if not any(bundle.glob("*.js")):
            raise RuntimeError(
                f"the frontend is not built ({bundle} has no .js files): "
                "run `npm ci && npm run build` (Node.js 20 or newer) or `bash scripts/setup.sh`, then build again"
            )
