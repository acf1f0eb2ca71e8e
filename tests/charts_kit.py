"""Reading the console's Vega-Lite charts in tests: from a page run (AppTest, where Streamlit sends each
chart's data as Arrow datasets) or from the library's Altair objects, as one :class:`VegaChart`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd
import pyarrow as pa
from streamlit.testing.v1 import AppTest


@dataclass
class VegaChart:
    """A chart's Vega-Lite spec and its datasets by name."""

    spec: dict[str, Any]
    data: dict[str, pd.DataFrame]

    @property
    def layers(self) -> list[dict[str, Any]]:
        """The unit specs (the chart itself when it is not layered)."""
        return list(self.spec.get("layer", [self.spec]))

    def frame(self, layer: dict[str, Any]) -> pd.DataFrame:
        """The data a layer draws (its own, else the chart's)."""
        source = layer.get("data") or self.spec["data"]
        return self.data[source["name"]]

    def frames_with(self, column: str) -> list[pd.DataFrame]:
        """Every layer's data that has ``column``."""
        return [f for f in (self.frame(layer) for layer in self.layers) if column in f.columns]

    def column(self, column: str) -> list[Any]:
        """``column`` of the first layer's data that has it ([] when none has)."""
        found = self.frames_with(column)
        return list(found[0][column]) if found else []

    def thresholds(self) -> list[float]:
        """The values of the dashed threshold lines (each drawn once, with its label)."""
        return sorted(
            float(v)
            for layer in self.layers
            if layer["mark"]["type"] == "rule"
            for v in self.frame(layer).get("threshold", [])
        )

    @property
    def no_data_note(self) -> str | None:
        """The text of a chart that only says why it is empty (no axes), else None."""
        if self.spec.get("mark", {}).get("type") != "text" or "layer" in self.spec:
            return None
        encoding = self.spec.get("encoding", {})
        assert "x" not in encoding and "y" not in encoding, "a no-data chart has no axes"
        return str(self.frame(self.spec)["note"].iloc[0])


def page_charts(at: AppTest) -> list[VegaChart]:
    """The page's charts in page order."""
    out = []
    for chart in at.get("vega_lite_chart"):
        data = {d.name: pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets}
        out.append(VegaChart(json.loads(chart.proto.spec), data))
    return out


def library_chart(chart: alt.TopLevelMixin) -> VegaChart:
    """An Altair chart as the browser gets it (its inline datasets as frames)."""
    spec = chart.to_dict()
    datasets = spec.pop("datasets", {})
    return VegaChart(spec, {name: pd.DataFrame(rows) for name, rows in datasets.items()})
