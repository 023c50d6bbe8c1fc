"""The live terminal dashboard (textual) for ``tickhawk demo`` and ``tickhawk run``."""

from tickhawk.tui.dashboard import Dashboard, DashboardView, Source

__all__ = ["Dashboard", "DashboardView", "Source"]
