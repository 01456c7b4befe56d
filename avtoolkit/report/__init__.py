"""The main job: the demo corpus through both demo recipes, noise curves, plots and a report."""

from avtoolkit.report.demo import run_demo

__all__ = ["run_demo"]
