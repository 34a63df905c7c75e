"""Band definitions: names, order, native grid size, resolution, dtype, central wavelength.

Band order is data: ``S2_BANDS`` lists the 12 Sentinel-2 L2A bands of BigEarthNet in wavelength order
(B10, the cirrus band, is not in L2A products).  Each becomes one column named after the band, holding a
2-D array at its native resolution: 120x120 at 10 m, 60x60 at 20 m, 20x20 at 60 m, uint16 surface
reflectance scaled by 10,000.  Sentinel-1 ``VV`` and ``VH`` are float32 120x120 backscatter in dB.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Band:
    """One band of a patch.

    Attributes:
        name: column name and file suffix (``B04``, ``VV``).
        sensor: ``s2`` or ``s1``.
        resolution_m: ground sampling distance in metres.
        size: pixels per side of the 1.2 km x 1.2 km patch.
        dtype: numpy dtype of the stored values.
        wavelength_nm: central wavelength (Sentinel-2A), ``None`` for radar.
        unit: what a stored value means.
    """

    name: str
    sensor: str
    resolution_m: int
    size: int
    dtype: str
    wavelength_nm: float | None
    unit: str

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.size)


_S2_UNIT = "surface reflectance x 10,000 (L2A, sen2cor)"
S2_BANDS: tuple[Band, ...] = (
    Band("B01", "s2", 60, 20, "uint16", 442.7, _S2_UNIT),
    Band("B02", "s2", 10, 120, "uint16", 492.4, _S2_UNIT),
    Band("B03", "s2", 10, 120, "uint16", 559.8, _S2_UNIT),
    Band("B04", "s2", 10, 120, "uint16", 664.6, _S2_UNIT),
    Band("B05", "s2", 20, 60, "uint16", 704.1, _S2_UNIT),
    Band("B06", "s2", 20, 60, "uint16", 740.5, _S2_UNIT),
    Band("B07", "s2", 20, 60, "uint16", 782.8, _S2_UNIT),
    Band("B08", "s2", 10, 120, "uint16", 832.8, _S2_UNIT),
    Band("B8A", "s2", 20, 60, "uint16", 864.7, _S2_UNIT),
    Band("B09", "s2", 60, 20, "uint16", 945.1, _S2_UNIT),
    Band("B11", "s2", 20, 60, "uint16", 1613.7, _S2_UNIT),
    Band("B12", "s2", 20, 60, "uint16", 2202.4, _S2_UNIT),
)
S1_BANDS: tuple[Band, ...] = (
    Band("VV", "s1", 10, 120, "float32", None, "backscatter sigma0, dB"),
    Band("VH", "s1", 10, 120, "float32", None, "backscatter sigma0, dB"),
)
BANDS: dict[str, Band] = {b.name: b for b in S2_BANDS + S1_BANDS}
RGB: tuple[str, str, str] = ("B04", "B03", "B02")


def bands_for(with_s1: bool) -> tuple[Band, ...]:
    """The stored bands, in column order: S2 always, then S1 when requested."""
    return S2_BANDS + (S1_BANDS if with_s1 else ())
