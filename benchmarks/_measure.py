"""What the benchmarks share: the machine they ran on, its load, and the process's memory.

The scripts import it as a sibling module (``python benchmarks/x.py`` puts ``benchmarks/`` on
``sys.path``; a script loaded by path adds it itself).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine(packages: Sequence[str]) -> dict[str, Any]:
    """The machine, the interpreter and the versions of ``packages``."""
    affinity = getattr(os, "sched_getaffinity", None)
    try:
        memory_gb: float | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (AttributeError, ValueError, OSError):
        memory_gb = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        "memory_gb": memory_gb,
        "versions": {name: version(name) for name in packages},
    }


def load_average() -> float | None:
    """The 1-minute load average: on a busy machine wall times are not the software's."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def machine_lines(m: dict[str, Any], load: dict[str, float | None]) -> list[str]:
    """The report's last lines: the machine and the load average before and after."""
    memory = f", {m['memory_gb']:.0f} GB" if m.get("memory_gb") else ""
    before, after = load["before"], load["after"]
    return [
        f"machine             {m['cpu'] or 'unknown CPU'}, {m['logical_cores']} logical cores "
        f"({m['usable_cores']} usable){memory}",
        f"                    {m['platform']}, Python {m['python']}, "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        f"load average        {before:.2f} before, {after:.2f} after (1 min, this run included; "
        f"above {m['usable_cores']} other work shared the cores)"
        if before is not None and after is not None
        else "load average        unknown",
    ]


def proc_status_mb(key: str) -> float | None:
    """A ``/proc/self/status`` memory figure (``VmRSS``, ``VmHWM``) in MB; None off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return False
    return True
