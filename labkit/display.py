"""Showing progress where the user is: a live widget in a notebook, text in a terminal."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

from tqdm.auto import tqdm


def show(widget: Any, text: str | None = None) -> None:
    """Display ``widget`` in a notebook with a plain-text form that reads as prose.

    Where widgets do not render (a saved notebook before it runs, a viewer
    without the widget state, nbval), the output's ``text/plain`` is what a
    reader sees: ``text``, or for a slider its description, value and range,
    instead of the widget's raw repr.
    """
    _show_live(widget, text)


def slider(description: str, value: int, min: int, max: int) -> Any:
    """An integer slider for a notebook, shown at once with its plain-text form; returns the widget.

    Read ``.value`` in the cell that uses it, so moving the slider and
    running that cell again takes the new value.
    """
    import ipywidgets

    widget = ipywidgets.IntSlider(value=value, min=min, max=max, description=description)
    show(widget)
    return widget


def _show_live(widget: Any, text: str | None = None) -> Any:
    """:func:`show`, returning the display's handle, with which :func:`settle` replaces the widget later."""
    from IPython.display import display

    bundle = dict(widget._repr_mimebundle_() or {})
    if text is None:
        text = f"{widget.description}: {widget.value} (a slider from {widget.min} to {widget.max})"
    bundle["text/plain"] = text
    return display(bundle, raw=True, display_id=True)


def settle(handle: Any, text: str, html: str | None = None) -> None:
    """Replace a live display by static output, so the saved notebook shows what it ended as.

    With no ``handle`` (no live display was shown, ``LABKIT_PROGRESS=settled``)
    the static output is displayed anew.
    """
    bundle = {"text/plain": text}
    if html is not None:
        bundle["text/html"] = html
    if handle is None:
        from IPython.display import display

        display(bundle, raw=True)
    else:
        handle.update(bundle, raw=True)


def show_figure(figure: Any, text: str) -> None:
    """Display a matplotlib figure as a PNG whose plain-text form is ``text``, and close it.

    ``text`` is what a reader without images gets (and what nbval compares),
    in place of the figure's ``<Figure size ...>`` repr.
    """
    import base64
    import io

    import matplotlib.pyplot as plt
    from IPython.display import display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    display({"image/png": base64.b64encode(buffer.getvalue()).decode("ascii"), "text/plain": text}, raw=True)


def live() -> bool:
    """Whether displays in a notebook update in place (the default).

    ``LABKIT_PROGRESS=settled`` shows only what each live display would end
    as, once, for runners that cannot apply display updates (nbval, which
    the test suite runs with it set).
    """
    return os.environ.get("LABKIT_PROGRESS", "live").lower() != "settled"


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
        self._handle: Any = None
        self._last: dict[str, str] = dict.fromkeys(containers, "pending")
        self._notebook = enabled and in_notebook()
        if self._notebook and live():
            try:
                import ipywidgets
            except ImportError:
                pass
            else:
                self._widget = ipywidgets.HTML(value=self._html(self._last))
                self._handle = _show_live(
                    self._widget, f"pod {pod}: the state of {', '.join(containers)}, live while the pod starts"
                )

    def __call__(self, states: dict[str, str]) -> None:
        if not self.enabled:
            return
        self._last = dict(states)
        if self._widget is not None:
            self._widget.value = self._html(states)
        elif not self._notebook:
            shown = ", ".join(f"{c} {s}" for c, s in states.items())
            print(f"pod {self.pod}: {shown}", file=sys.stderr, flush=True)

    def done(self) -> None:
        if not self.enabled:
            return
        took = time.monotonic() - self.started
        self._settle(dict.fromkeys(self.containers, "running"))
        print(f"pod {self.pod} is ready: {', '.join(self.containers)} running (took {took:.1f} s)")

    def failed(self) -> None:
        """Leave the states last seen in place of the live table, when the pod did not become ready."""
        if self.enabled:
            self._settle(self._last)

    def _settle(self, states: dict[str, str]) -> None:
        if self._notebook:
            shown = ", ".join(f"{c} {s}" for c, s in states.items())
            settle(self._handle, f"pod {self.pod}: {shown}", self._html(states))
        if self._widget is not None:
            self._widget.close()
            self._widget = None
        self._notebook = False

    def _html(self, states: dict[str, str]) -> str:
        rows = "".join(
            f"<tr><td><code>{c}</code></td><td>{'&#9989;' if s == 'running' else '&#8987;'} {s}</td></tr>"
            for c, s in states.items()
        )
        return f"<b>pod {self.pod}</b><table>{rows}</table>"


class MeasureProgress:
    """Live progress of a measurement: elapsed and remaining time, lines seen, failed polls, restarts.

    A ``tqdm`` bar, which ``tqdm.auto`` shows as a widget in a notebook and
    as one updating line on stderr in a terminal. With ``lines`` the bar
    counts lines (the time limit is shown beside it); otherwise it counts
    seconds of ``duration``.
    """

    def __init__(
        self,
        pod: str,
        limit: float,
        duration: float | None,
        lines: int | None,
        *,
        enabled: bool = True,
        file: TextIO | None = None,
    ) -> None:
        self.lines = lines
        self.pod = pod
        self.started = time.monotonic()
        self._bar: Any = None
        self._handle: Any = None
        self._seen: dict[str, Any] = {}
        self._settled_only = enabled and file is None and in_notebook() and not live()
        if not enabled or self._settled_only:
            return
        # In a terminal the bar is one line redrawn in place; where stderr is not a terminal (a log
        # file, a pipe) it is left out rather than written out hundreds of times. ``file`` forces it on.
        widget = in_notebook() and file is None
        shown: dict[str, Any] = {
            "leave": True,
            "disable": False if widget or file is not None else None,
            "mininterval": 0 if file is not None else 0.5,
            "file": file,
        }
        if widget:
            shown["display"] = False  # shown below, with a plain-text form that reads as prose
        bar = _notebook_tqdm() if widget else tqdm
        if lines is not None:
            self._bar = bar(total=lines, desc=f"pod {pod}: new lines", unit="line", **shown)
            self._limit = f"{limit:g} s"
            what = f"{lines} new lines, within {limit:g} s"
        else:
            self._bar = bar(
                total=round(duration or limit),
                desc=f"pod {pod}: observing",
                unit="s",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]",
                **shown,
            )
            self._limit = ""
            what = f"{round(duration or limit)} s"
        if widget and hasattr(self._bar, "container"):
            self._handle = _show_live(
                self._bar.container, f"pod {pod}: progress of observing {what}, live while the cell runs"
            )
            self._bar.displayed = True

    def update(self, seen: int | None, failed: int | None, restarts: int) -> None:
        """Show what the observer has seen so far (None: not known while it runs)."""
        self._seen = {"lines": seen, "failed polls": failed, "restarts": restarts}
        if self._bar is None or self._bar.disable:
            return
        if self.lines is not None:
            target = min(seen or 0, self.lines)
        else:
            target = min(time.monotonic() - self.started, self._bar.total)
        if target > self._bar.n:
            self._bar.update(target - self._bar.n)
        shown: dict[str, int | str] = {}
        if seen is not None and self.lines is None:
            shown["lines"] = seen
        if failed is not None:
            shown["failed polls"] = failed
        shown["restarts"] = restarts
        if self._limit:
            shown["time limit"] = self._limit
        self._bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        """Stop the bar; in a notebook, leave one line saying what was observed in its place."""
        seen = ", ".join(f"{k} {v}" for k, v in self._seen.items() if v is not None)
        summary = f"pod {self.pod}: observed for {time.monotonic() - self.started:.0f} s ({seen})"
        if self._settled_only or self._handle is not None:
            settle(self._handle, summary)
            self._settled_only = False
        if self._bar is None:
            return
        self._bar.close()
        if self._handle is not None:
            self._bar.container.close()
            self._handle = None
        self._bar = None


def _notebook_tqdm() -> Any:
    """tqdm's notebook bar, which can be built without displaying it."""
    from tqdm.notebook import tqdm as notebook_tqdm

    return notebook_tqdm
