"""The `rawcore` command line (`rawcore.cli.main:main`)."""

from rawcore.cli.commands import ExitCode, progress_printer
from rawcore.cli.main import main, run

__all__ = ["ExitCode", "main", "progress_printer", "run"]
