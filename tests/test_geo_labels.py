from datetime import datetime

import numpy as np
import pyarrow.parquet as pq
import pytest
from pyproj import Transformer

from ben_hub.geo import season, time_from_product, utm_to_lonlat
from ben_hub.labels import CLC_CODES_43, LABELS_19, LABELS_43, MAP_43_TO_19, label_indices, to_19

from .conftest import V2_META, needs_shared


@pytest.mark.parametrize("epsg", [32629, 32633, 32635, 32734])
def test_utm_to_lonlat_matches_proj(epsg: int) -> None:
    to_wgs84 = Transformer.from_crs(epsg, 4326, always_xy=True)
    rng = np.random.default_rng(epsg)
    for easting, northing in zip(rng.uniform(2e5, 8e5, 100), rng.uniform(1e5, 8e6, 100), strict=True):
        assert utm_to_lonlat(easting, northing, epsg) == pytest.approx(to_wgs84.transform(easting, northing), abs=1e-9)


def test_season_and_product_times() -> None:
    assert season(datetime(2017, 12, 21)) == "winter"
    assert season(datetime(2017, 6, 13)) == "summer"
    assert season(datetime(2017, 6, 13), latitude=-30) == "winter"
    assert time_from_product("S2B_MSIL2A_20170924T93020_69_24") == datetime(2017, 9, 24, 9, 30, 20)
    assert time_from_product("S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_26_57") == datetime(2017, 6, 13, 10, 10, 31)


def test_label_order_is_clc_code_order_not_alphabetical() -> None:
    assert len(LABELS_43) == 43 and len(set(LABELS_43)) == 43 and len(LABELS_19) == 19
    assert list(CLC_CODES_43) == sorted(CLC_CODES_43)
    assert list(LABELS_43) != sorted(LABELS_43) and list(LABELS_19) != sorted(LABELS_19)
    assert LABELS_43[0] == "Continuous urban fabric" and LABELS_43[42] == "Sea and ocean"
    assert LABELS_19[0] == "Urban fabric" and LABELS_19[18] == "Marine waters"


def test_43_to_19_mapping() -> None:
    dropped = {LABELS_43[i] for i, j in enumerate(MAP_43_TO_19) if j is None}
    assert dropped == {
        "Road and rail networks and associated land",
        "Port areas",
        "Airports",
        "Mineral extraction sites",
        "Dump sites",
        "Construction sites",
        "Green urban areas",
        "Sport and leisure facilities",
        "Bare rock",
        "Burnt areas",
    }
    assert {j for j in MAP_43_TO_19 if j is not None} == set(range(19))
    assert to_19(label_indices(["Vineyards", "Olive groves", "Sea and ocean"])) == [3, 18]
    assert to_19(label_indices(["Burnt areas"])) == []


@needs_shared()
def test_reben_label_names_are_the_19_classes() -> None:
    table = pq.read_table(V2_META / "metadata.parquet", columns=["labels"])
    names = set(table.column("labels").combine_chunks().flatten().to_pylist())
    assert names == set(LABELS_19)


def test_acronyms_are_unique_and_follow_the_papers_table() -> None:
    from ben_hub.labels import ACRONYMS_19, ACRONYMS_43

    assert len(set(ACRONYMS_43)) == 43 and len(set(ACRONYMS_19)) == 19
    assert ACRONYMS_43[LABELS_43.index("Burnt areas")] == "BA"
    assert (
        ACRONYMS_43[
            LABELS_43.index("Land principally occupied by agriculture, with significant areas of natural vegetation")
        ]
        == "LPOASANV"
    )
    assert ACRONYMS_43[LABELS_43.index("Sea and ocean")] == "SO"
