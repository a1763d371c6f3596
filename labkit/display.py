"""Showing progress where the user is: a live widget in a notebook, text in a terminal."""

from __future__ import annotations

import sys
import time
from typing import Any


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where widgets can render."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class ReadyProgress:
    """Container states while a pod starts.

    In a notebook a small table updates in place (an ``ipywidgets.HTML``);
    elsewhere each change is written as one line to stderr. The closing
    summary is always printed, so it stays in the notebook's saved output.
    """

    def __init__(self, pod: str, containers: list[str], *, enabled: bool = True) -> None:
        self.pod = pod
        self.containers = containers
        self.enabled = enabled
        self.started = time.monotonic()
        self._widget: Any = None
        if enabled and in_notebook():
            try:
                import ipywidgets
                from IPython.display import display
            except ImportError:
                pass
            else:
                self._widget = ipywidgets.HTML(value=self._html({c: "pending" for c in containers}))
                display(self._widget)

    def __call__(self, states: dict[str, str]) -> None:
        if not self.enabled:
            return
        if self._widget is not None:
            self._widget.value = self._html(states)
        else:
            shown = ", ".join(f"{c} {s}" for c, s in states.items())
            print(f"pod {self.pod}: {shown}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if not self.enabled:
            return
        took = time.monotonic() - self.started
        if self._widget is not None:
            self._widget.value = self._html({c: "running" for c in self.containers})
        print(f"pod {self.pod} is ready: {', '.join(self.containers)} running (took {took:.1f} s)")

    def _html(self, states: dict[str, str]) -> str:
        rows = "".join(
            f"<tr><td><code>{c}</code></td><td>{'&#9989;' if s == 'running' else '&#8987;'} {s}</td></tr>"
            for c, s in states.items()
        )
        return f"<b>pod {self.pod}</b><table>{rows}</table>"
