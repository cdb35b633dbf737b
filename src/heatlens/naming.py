"""Names made safe for files and artifact paths (importable anywhere)."""

import re


def slug(name: str) -> str:
    """A class name usable in file names: "Viral Pneumonia" -> "Viral_Pneumonia"."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
