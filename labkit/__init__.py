"""labkit: the Kubernetes sidecar pattern as runnable, checkable lab notebooks.

The public surface is small: :class:`Lab` runs a Pod and walks the
tutorial's steps, :func:`read_lines` turns the served file into a
DataFrame, and every deliberate error derives from :class:`LabkitError`;
a stop by the user (Ctrl-C, the notebook's stop button) during one of the
lab's waits is :class:`Stopped`, a :class:`KeyboardInterrupt`.
"""

from labkit.checks import Check
from labkit.clocks import ClockOffset
from labkit.engines import ExecResult, get_engine
from labkit.errors import (
    AuthenticationError,
    ClassError,
    ContainerCrashed,
    ContainerNotFound,
    EngineError,
    EngineUnavailable,
    ExecError,
    ExecTimeout,
    FetchError,
    ImageNotFound,
    LabkitError,
    ManifestError,
    NotReady,
    PodExists,
    PodGone,
    PortError,
    ProbeUnavailable,
    ReadyTimeout,
    Stopped,
    WrongImage,
)
from labkit.forward import HttpResponse
from labkit.lab import Lab
from labkit.layout import Layout
from labkit.lines import read_lines
from labkit.manifest import load_pod
from labkit.report import LatencyReport
from labkit.sweeps import sweep

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "Check",
    "ClassError",
    "ClockOffset",
    "ContainerCrashed",
    "ContainerNotFound",
    "EngineError",
    "EngineUnavailable",
    "ExecError",
    "ExecResult",
    "ExecTimeout",
    "FetchError",
    "HttpResponse",
    "ImageNotFound",
    "Lab",
    "LabkitError",
    "LatencyReport",
    "Layout",
    "ManifestError",
    "NotReady",
    "PodExists",
    "PodGone",
    "PortError",
    "ProbeUnavailable",
    "ReadyTimeout",
    "Stopped",
    "WrongImage",
    "get_engine",
    "load_pod",
    "read_lines",
    "sweep",
]
