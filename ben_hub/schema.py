"""The row schema of a built repository: one place that says what a row is.

Columns, in order:

* ``patch_id``: the patch name (v1 name for v1, reBEN ``patch_id`` for v2).
* one column per band (``bands.S2_BANDS`` order, then ``VV``, ``VH`` when S1 is built): an ``Array2D`` at
  the band's native size and dtype, values bit-identical to the GeoTIFF.
* ``labels`` (v1 only): ``List(ClassLabel)`` over ``labels.LABELS_43``; ``labels_19``: over ``LABELS_19``.
* metadata: ``s1_patch_id``, ``s2v1_name`` (v2), ``epsg``, UTM bounds ``ulx uly lrx lry`` (metres),
  WGS84 centroid ``lon lat`` (degrees), ``acquisition_time`` (UTC), ``season``, ``tile_source``,
  ``country`` (v2), and flags ``seasonal_snow``, ``cloud_or_shadow``, ``no_19_class_labels``.
"""

from __future__ import annotations

from typing import Any

import datasets
import pyarrow as pa

from .archive.base import FLAG_COLUMNS
from .bands import bands_for
from .labels import LABELS_19, LABELS_43


def features(layout: str, with_s1: bool) -> datasets.Features:
    """The ``datasets`` features of a row for an archive layout (``v1``/``v2``)."""
    cols: dict[str, Any] = {"patch_id": datasets.Value("string")}
    for band in bands_for(with_s1):
        cols[band.name] = datasets.Array2D(shape=band.shape, dtype=band.dtype)
    if layout == "v1":
        cols["labels"] = datasets.List(datasets.ClassLabel(names=list(LABELS_43)))
    cols["labels_19"] = datasets.List(datasets.ClassLabel(names=list(LABELS_19)))
    cols["s1_patch_id"] = datasets.Value("string")
    if layout == "v2":
        cols["s2v1_name"] = datasets.Value("string")
    cols["epsg"] = datasets.Value("int32")
    for name in ("ulx", "uly", "lrx", "lry", "lon", "lat"):
        cols[name] = datasets.Value("float64")
    cols["acquisition_time"] = datasets.Value("timestamp[s]")
    for name in ("season", "tile_source", "country"):
        cols[name] = datasets.Value("string")
    for name in FLAG_COLUMNS:
        cols[name] = datasets.Value("bool")
    return datasets.Features(cols)


def storage_schema(feats: datasets.Features) -> pa.Schema:
    """The plain Arrow schema written to parquet: ``Array2D`` as ``list<list<dtype>>`` storage."""
    fields = []
    for field in feats.arrow_schema:
        kind = field.type.storage_type if isinstance(field.type, pa.ExtensionType) else field.type
        fields.append(pa.field(field.name, kind))
    return pa.schema(fields)
