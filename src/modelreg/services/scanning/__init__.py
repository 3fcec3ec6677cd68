"""Scanning model files for code, without ever loading them (issue 24).

The interface is small: ``code_kind(path, head)`` says from a name and a file's first bytes
whether a file can carry code at all, and ``scan_file`` reads one that can and returns a
``FileVerdict``. ``SCANNER`` names the engine and its allowlist; a blob's verdict is cached
per digest and scanner (``services.scanning.records``), so a new scanner version rescans.
"""

from __future__ import annotations

from modelreg.services.scanning.formats import HEAD, FileVerdict, code_kind, scan_file
from modelreg.services.scanning.pickles import Finding

# Bump the number whenever the engine or the allowlist changes what a file's verdict is.
SCANNER = "modelreg-scan/1 (pickletools; allowlist 1)"

__all__ = ["HEAD", "SCANNER", "FileVerdict", "Finding", "code_kind", "scan_file"]
