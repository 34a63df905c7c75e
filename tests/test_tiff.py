from pathlib import Path

import numpy as np
import pytest
import tifffile

from ben_hub.errors import TiffError
from ben_hub.tiff import GeoInfo, read_geoinfo, read_tiff, write_tiff

from .conftest import EXAMPLE, needs_shared


@needs_shared()
def test_reader_equals_tifffile_on_every_real_band() -> None:
    files = sorted(EXAMPLE.glob("*/*/*.tif"))
    assert len(files) == 6 * 12 + 6 * 2
    for path in files:
        ours, ref = read_tiff(path.read_bytes()), tifffile.imread(path)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape
        assert ours.tobytes() == ref.tobytes(), path


@needs_shared()
def test_geoinfo_of_a_real_band_matches_its_json() -> None:
    patch = EXAMPLE / "BigEarthNet-S2-Example" / "S2A_MSIL2A_20170613T101031_87_48"
    geo = read_geoinfo((patch / "S2A_MSIL2A_20170613T101031_87_48_B02.tif").read_bytes())
    assert geo == GeoInfo(404400.0, 5342400.0, 10.0, 10.0, 32633)


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
@pytest.mark.parametrize("size", [20, 60, 120])
def test_writer_round_trips_through_tifffile(tmp_path: Path, dtype: str, size: int) -> None:
    rng = np.random.default_rng(size)
    array = (rng.random((size, size)) * 5000).astype(dtype)
    array[-1, -1] = 0  # trailing zero bytes survive
    data = write_tiff(array, GeoInfo(1.0, 2.0, 10.0, 10.0, 32635))
    (tmp_path / "x.tif").write_bytes(data)
    assert tifffile.imread(tmp_path / "x.tif").tobytes() == array.tobytes()
    assert read_tiff(data).tobytes() == array.tobytes()
    assert read_geoinfo(data) == GeoInfo(1.0, 2.0, 10.0, 10.0, 32635)


def test_truncated_file_is_rejected() -> None:
    data = write_tiff(np.ones((120, 120), np.uint16))
    with pytest.raises(TiffError, match="truncated"):
        read_tiff(data[:-100])
    with pytest.raises(TiffError):
        read_tiff(data[:5])


def test_shape_dtype_and_compression_are_checked() -> None:
    data = write_tiff(np.ones((60, 60), np.uint16))
    with pytest.raises(TiffError, match="shape 60x60"):
        read_tiff(data, (120, 120), "uint16")
    with pytest.raises(TiffError, match="dtype uint16"):
        read_tiff(data, (60, 60), "float32")
    compressed = bytearray(data)
    entry = compressed.find(bytes([0x03, 0x01, 0x03, 0x00]))  # tag 259 (compression), type SHORT
    compressed[entry + 8] = 5
    with pytest.raises(TiffError, match="compressed"):
        read_tiff(bytes(compressed))
    with pytest.raises(TiffError, match="not a TIFF"):
        read_tiff(b"\x89PNG\r\n\x1a\n....")
