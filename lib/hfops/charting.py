"""Vega-Lite (Altair) building blocks every console chart uses: the legend, threshold lines, the no-data tile.

The console draws with Altair rather than plotly: a browser evaluates Vega's 0.8 MB of code on a page load
instead of plotly's 4.7 MB (a second of every load of a page with a chart on 2 cores). Imported only by the
modules that build charts (pages' view models), never on a CLI or worker start.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

NO_DATA_COLOR = "#808495"


def legend(columns: int = 2, label_limit: int = 170) -> alt.Legend:
    """Above the plot, wrapped in rows of ``columns``: never over the x-axis tick labels, never cut."""
    return alt.Legend(orient="top", title=None, columns=columns, labelLimit=label_limit)


def no_data(text: str, height: int) -> alt.Chart:
    """A chart without data: ``text`` in its middle and no axes (instead of empty default axes)."""
    return (
        alt.Chart(pd.DataFrame({"note": [text]}))
        .mark_text(fontSize=15, color=NO_DATA_COLOR)
        .encode(text="note:N")
        .properties(height=height)
    )


def threshold(value: float, text: str, color: str = "red", axis: str = "y") -> list[alt.Chart]:
    """A dashed threshold line at ``value`` on ``axis`` and its label, as two layers (data: ``threshold``,
    ``label``)."""
    data = alt.Chart(pd.DataFrame({"threshold": [value], "label": [text]}))
    position = alt.Y("threshold:Q") if axis == "y" else alt.X("threshold:Q")
    line = data.mark_rule(color=color, strokeDash=[6, 4]).encode(**{axis: position})
    if axis == "y":
        label = data.mark_text(align="left", dx=4, dy=-7, color=color, fontSize=11).encode(
            y="threshold:Q", x=alt.value(0), text="label:N"
        )
    else:
        label = data.mark_text(align="left", dx=4, dy=8, color=color, fontSize=11).encode(
            x="threshold:Q", y=alt.value(0), text="label:N"
        )
    return [line, label]
