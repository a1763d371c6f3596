"""Everything labkit raises on purpose derives from :class:`LabkitError`.

Each message says what happened and what to do next, so a student can act
on it without reading a traceback::

    LabkitError
    ├── ManifestError          the Pod YAML is missing, unparsable or not a usable Pod
    ├── EngineUnavailable      the engine cannot be used on this machine (how to fix it)
    ├── EngineError            the engine refused or failed an operation
    │   ├── AuthenticationError the cluster did not accept the credentials (how to get fresh ones)
    │   ├── PodExists          a pod of that name exists and labkit did not create it
    │   └── PodGone            the lab's pod disappeared (deleted, evicted) while it was used
    ├── NotReady               a container did not start: image missing, crashed, timeout
    │   ├── ImageNotFound
    │   ├── ContainerCrashed
    │   └── ReadyTimeout       (also a TimeoutError)
    ├── ContainerNotFound      exec or logs named a container the pod does not have
    ├── ExecError              a command exited non-zero with ``check=True``
    ├── ExecTimeout            a command ran past its timeout (also a TimeoutError)
    ├── PortError              a port cannot be listened on or nothing answers behind it
    ├── FetchError             an HTTP request through a port-forward failed
    └── ProbeUnavailable       the serving container has no client for the in-pod probe

One more is raised on purpose and is not a :class:`LabkitError`:
:class:`Stopped`, the user's own stop (Ctrl-C, the notebook's stop button),
a :class:`KeyboardInterrupt` carrying what a wait had when it was stopped.
"""

from __future__ import annotations

import os
import sysconfig
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from labkit.report import LatencyReport

_PACKAGE = Path(__file__).resolve().parent
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


class LabkitError(Exception):
    """Root of every error labkit raises on purpose.

    In a notebook the error shows as its message and the line of the
    student's cell that led to it, not the kit's internals: the message is
    written to be acted on. ``%tb`` in the next cell, or
    ``LABKIT_TRACEBACK=full`` in the environment, shows the full traceback.
    """

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for a custom traceback: the short form first, the full one when asked again."""
        full = os.environ.get("LABKIT_TRACEBACK", "").lower() == "full" or getattr(self, "_labkit_shown", False)
        self._labkit_shown = True
        if full:
            return _full_traceback(self)
        return short_traceback(self, traceback.extract_tb(self.__traceback__), _cell_label)


def short_traceback(error: BaseException, frames: list[traceback.FrameSummary], label: object = None) -> list[str]:
    """The error's message under the lines of the caller's own code that led to it.

    ``frames`` is the traceback as :func:`traceback.extract_tb` gives it;
    frames inside labkit and inside installed packages are left out, since
    the message already says what happened there. ``label`` turns a frame's
    file name into how the user knows it (``Cell In[5]``), or None.
    """
    name_of = label if callable(label) else (lambda filename: None)
    shown = []
    for frame in frames:
        if _is_library(frame.filename):
            continue
        where = name_of(frame.filename) or f"File {frame.filename}"
        shown.append(f"{where}, line {frame.lineno}: {(frame.line or '').strip()}")
    return [
        f"\x1b[31m{type(error).__name__}\x1b[0m: {error}",
        *(f"  {line}" for line in shown),
        "  (the kit's own traceback is one step away: run %tb in the next cell)",
    ]


def _is_library(filename: str) -> bool:
    path = Path(filename)
    if not path.is_absolute():
        return False
    resolved = path.resolve()
    if resolved.is_relative_to(_PACKAGE) or resolved.is_relative_to(_STDLIB):
        return True
    return any(part in ("site-packages", "dist-packages") for part in path.parts)


def _cell_label(filename: str) -> str | None:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    named = shell.compile.format_code_name(filename) if shell is not None else None
    return f"{named[0]} {named[1]}" if named else None


def _full_traceback(error: BaseException) -> list[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return traceback.format_exception(error)
    shell = get_ipython()
    if shell is not None:
        return list(shell.InteractiveTB.structured_traceback(type(error), error, error.__traceback__))
    return traceback.format_exception(error)


class ManifestError(LabkitError):
    """The manifest cannot be used as the lab's Pod."""


class EngineUnavailable(LabkitError):
    """The chosen engine is not installed or not usable here."""


class EngineError(LabkitError):
    """The engine failed an operation; the message carries its own words."""


class AuthenticationError(EngineError):
    """The cluster did not accept the credentials (HTTP 401): the token expired or is wrong."""


class PodExists(EngineError):
    """A pod with the lab's name exists and was not created by labkit."""


class PodGone(EngineError):
    """The lab's pod no longer exists: someone deleted it, or the cluster evicted it.

    Raised by a measurement that was running when the pod went; ``report``
    then holds what was observed until then (a :class:`~labkit.latency.LatencyReport`).
    """

    def __init__(self, message: str, *, report: LatencyReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class NotReady(LabkitError):
    """A container of the pod did not reach the running state."""

    def __init__(self, message: str, *, container: str | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.container = container
        self.reason = reason


class ImageNotFound(NotReady):
    """A container's image is neither present locally nor pullable."""


class WrongImage(NotReady):
    """A local image is not what its name says: the kit's stand-in for one image under another's name."""


class ContainerCrashed(NotReady):
    """A container's command exited instead of running."""


class ReadyTimeout(NotReady, TimeoutError):
    """The pod was not ready within the allowed time."""


class ContainerNotFound(LabkitError):
    """A container name that the pod does not have."""


class ExecError(LabkitError):
    """A command run with ``check=True`` exited with a non-zero code."""

    def __init__(self, message: str, *, returncode: int, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr


class ExecTimeout(LabkitError, TimeoutError):
    """A command did not finish within its timeout."""

    def __init__(self, message: str, *, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


class PortError(LabkitError):
    """A local port cannot be opened, or nothing listens on the pod's port."""


class FetchError(LabkitError):
    """An HTTP request to the pod failed; ``status`` is the HTTP status when the server answered one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ProbeUnavailable(LabkitError):
    """The serving container's image has no HTTP client for the in-pod probe."""


class ClassError(LabkitError):
    """An instructor's ``labkit class`` step could not be done (rights, names taken, the cluster away)."""


class Stopped(KeyboardInterrupt):
    """The user stopped a wait of the lab (Ctrl-C, or the notebook's stop button); what it had is kept here.

    A :class:`KeyboardInterrupt`, deliberately not a :class:`LabkitError` nor
    an :class:`Exception`: ``except Exception`` and ``except LabkitError``
    never swallow a stop, and in a notebook it ends the cell and the cells
    queued after it ("Run All"), as the stop button should. ``what`` names
    what was stopped (``the measurement of pod multicontainer-pod``),
    ``where`` says in words where it stood (time, lines seen, the
    containers' states, the last answer). ``report`` is the partial
    :class:`~labkit.report.LatencyReport` of a stopped measurement, ``table``
    the partial table of a stopped :func:`~labkit.sweeps.sweep` (with
    ``attrs["runs"]``), else None; ``kept`` says where the user finds them.

    In a notebook it shows as one line; ``%tb`` in the next cell, or
    ``LABKIT_TRACEBACK=full``, shows the full traceback.
    """

    def __init__(
        self,
        what: str,
        where: str = "",
        *,
        report: LatencyReport | None = None,
        table: pd.DataFrame | None = None,
        kept: str = "",
    ) -> None:
        self.what = what
        self.where = where
        self.report = report
        self.table = table
        self.kept = kept
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """What was stopped and where it stood, and where its partial result is, in one sentence."""
        text = f"stopped by you: {self.what}"
        if self.where:
            text += f" {self.where}"
        if self.kept:
            text += f"; {self.kept}"
        return text

    def __str__(self) -> str:
        return self.message

    def _render_traceback_(self) -> list[str]:
        """IPython's hook for the cell's error output: one line, the full traceback when asked again."""
        full = os.environ.get("LABKIT_TRACEBACK", "").lower() == "full" or getattr(self, "_labkit_shown", False)
        self._labkit_shown = True
        if full:
            return _full_traceback(self)
        return [f"\u23f9 \x1b[1mStopped by you\x1b[0m: {self.message.removeprefix('stopped by you: ')}."]
