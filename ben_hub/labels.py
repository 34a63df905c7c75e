"""BigEarthNet label nomenclatures, defined once.

Class order is data, not an accident of a dictionary:

* ``LABELS_43``: the 43 CORINE Land Cover level-3 classes present in BigEarthNet v1.0, in CLC code order
  (111 ... 523; 335 "Glaciers and perpetual snow" does not occur).  This is the order of
  ``original_labels`` in BigEarthNet's ``label_indices.json``; index ``i`` is ``ClassLabel`` id ``i``.
* ``LABELS_19``: the BigEarthNet-19 nomenclature (Sumbul et al. 2020; the reBEN label set), in the order
  of ``BigEarthNet-19_labels`` in ``label_indices.json``, which also follows CLC code order.

Neither list is alphabetical.  ``MAP_43_TO_19`` maps each 43-class index to its 19-class index, or ``None``
for the 10 classes the 19-class nomenclature drops (roads, ports, airports, mineral extraction, dumps,
construction, green urban, sport and leisure, bare rock, burnt areas).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

LABELS_43: tuple[str, ...] = (
    "Continuous urban fabric",  # 111
    "Discontinuous urban fabric",  # 112
    "Industrial or commercial units",  # 121
    "Road and rail networks and associated land",  # 122
    "Port areas",  # 123
    "Airports",  # 124
    "Mineral extraction sites",  # 131
    "Dump sites",  # 132
    "Construction sites",  # 133
    "Green urban areas",  # 141
    "Sport and leisure facilities",  # 142
    "Non-irrigated arable land",  # 211
    "Permanently irrigated land",  # 212
    "Rice fields",  # 213
    "Vineyards",  # 221
    "Fruit trees and berry plantations",  # 222
    "Olive groves",  # 223
    "Pastures",  # 231
    "Annual crops associated with permanent crops",  # 241
    "Complex cultivation patterns",  # 242
    "Land principally occupied by agriculture, with significant areas of natural vegetation",  # 243
    "Agro-forestry areas",  # 244
    "Broad-leaved forest",  # 311
    "Coniferous forest",  # 312
    "Mixed forest",  # 313
    "Natural grassland",  # 321
    "Moors and heathland",  # 322
    "Sclerophyllous vegetation",  # 323
    "Transitional woodland/shrub",  # 324
    "Beaches, dunes, sands",  # 331
    "Bare rock",  # 332
    "Sparsely vegetated areas",  # 333
    "Burnt areas",  # 334
    "Inland marshes",  # 411
    "Peatbogs",  # 412
    "Salt marshes",  # 421
    "Salines",  # 422
    "Intertidal flats",  # 423
    "Water courses",  # 511
    "Water bodies",  # 512
    "Coastal lagoons",  # 521
    "Estuaries",  # 522
    "Sea and ocean",  # 523
)

CLC_CODES_43: tuple[int, ...] = (
    111, 112, 121, 122, 123, 124, 131, 132, 133, 141, 142, 211, 212, 213, 221, 222, 223, 231, 241, 242,
    243, 244, 311, 312, 313, 321, 322, 323, 324, 331, 332, 333, 334, 411, 412, 421, 422, 423, 511, 512,
    521, 522, 523,
)  # fmt: skip

LABELS_19: tuple[str, ...] = (
    "Urban fabric",
    "Industrial or commercial units",
    "Arable land",
    "Permanent crops",
    "Pastures",
    "Complex cultivation patterns",
    "Land principally occupied by agriculture, with significant areas of natural vegetation",
    "Agro-forestry areas",
    "Broad-leaved forest",
    "Coniferous forest",
    "Mixed forest",
    "Natural grassland and sparsely vegetated areas",
    "Moors, heathland and sclerophyllous vegetation",
    "Transitional woodland, shrub",
    "Beaches, dunes, sands",
    "Inland wetlands",
    "Coastal wetlands",
    "Inland waters",
    "Marine waters",
)

_GROUPS_19: tuple[tuple[int, ...], ...] = (
    (0, 1), (2,), (11, 12, 13), (14, 15, 16, 18), (17,), (19,), (20,), (21,), (22,), (23,), (24,),
    (25, 31), (26, 27), (28,), (29,), (33, 34), (35, 36, 37), (38, 39), (40, 41, 42),
)  # fmt: skip

MAP_43_TO_19: tuple[int | None, ...] = tuple(
    next((j for j, group in enumerate(_GROUPS_19) if i in group), None) for i in range(len(LABELS_43))
)

ACRONYMS_43: tuple[str, ...] = (
    "CUF", "DUF", "ICU", "RRNAL", "PA", "A", "MES", "DS", "CS", "GUA", "SLF", "NIAL", "PIL", "RF", "V", "FTBP",
    "OG", "Pa", "ACAPC", "CCP", "LPOASANV", "AFA", "BLF", "CF", "MF", "NG", "MH", "SV", "TWS", "BDS", "BR", "SVA",
    "BA", "IM", "Pe", "SM", "S", "IF", "WC", "WB", "CL", "E", "SO",
)  # fmt: skip
"""The paper's acronyms (Fig. 4; the table in the authors' repository README), in ``LABELS_43`` order."""

ACRONYMS_19: tuple[str, ...] = (
    "UF", "ICU", "AL", "PC", "Pa", "CCP", "LPOASANV", "AFA", "BLF", "CF", "MF", "NGSVA", "MHSV", "TWS", "BDS",
    "IWe", "CWe", "IWa", "MW",
)  # fmt: skip
"""ben-hub's acronyms for the 19 classes (the paper defines none), built like the paper's."""

NOMENCLATURES: dict[int, tuple[str, ...]] = {43: LABELS_43, 19: LABELS_19}
LAYOUT_CLASSES: dict[str, int] = {"v1": 43, "v2": 19}
"""Each archive layout's own nomenclature: v1's JSONs give the 43 classes, reBEN's metadata the 19 only."""
ACRONYMS: dict[int, tuple[str, ...]] = {43: ACRONYMS_43, 19: ACRONYMS_19}
_INDEX = {n: {name: i for i, name in enumerate(names)} for n, names in NOMENCLATURES.items()}


def label_indices(names: Iterable[str], nomenclature: int = 43) -> list[int]:
    """Sorted class ids of ``names`` in ``nomenclature`` (43 or 19).

    Raises:
        KeyError: with the first unknown name.
    """
    index = _INDEX[nomenclature]
    return sorted({index[name] for name in names})


def to_19(indices_43: Sequence[int]) -> list[int]:
    """The 19-class ids of a patch given its 43-class ids (empty when no label survives)."""
    return sorted({j for i in indices_43 if (j := MAP_43_TO_19[i]) is not None})


def matrix_to_19(Y: np.ndarray) -> np.ndarray:
    """A 43-class multi-hot matrix ``(patches, 43)`` as the 19-class one ``(patches, 19)``, bool: a patch has a
    19-class label when it has one of the 43 classes grouped into it (:data:`MAP_43_TO_19`; the ten 43-class labels
    without a 19-class one are dropped), the ``labels_19`` a build stores for v1."""
    grouping = np.zeros((len(LABELS_43), len(LABELS_19)), np.int32)
    for i, j in enumerate(MAP_43_TO_19):
        if j is not None:
            grouping[i, j] = 1
    return (np.asarray(Y, np.int32) @ grouping) > 0
