"""ben-hub: BigEarthNet as a balanced, documented Hugging Face parquet dataset.

Public API: :func:`ben_hub.build.build` with :class:`ben_hub.build.BuildConfig`,
:func:`ben_hub.archive.locate_archive`, :func:`ben_hub.splits.split`,
:func:`ben_hub.archive.synth.synth_archive`.
"""

__version__ = "0.1.0"
