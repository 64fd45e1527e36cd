"""Open the dataset a config describes (``dataset.format``, ``space``, ``version``, ``betas``).

| format | version | space | betas | reader |
| --- | --- | --- | --- | --- |
| bmd | B | fsLR32k, MNI152, fsaverage | prepared_betas | :class:`.bmd.BMDLayout` |
| bmd | B | MNI152 | allvoxel | :class:`.perroi.BMDPerROI` |
| bmd | A | MNI152 | allvoxel (implied) | :class:`.perroi.BMDPerROI` |
| algonauts2021 | – | – | – | :class:`.algonauts.Algonauts2021` |

Every reader offers ``subjects()``, ``prepare_subject(subject, rois, ...)`` → SubjectData,
``files(subject, split)`` (named in errors), ``video_path(stimulus_id)`` and ``root``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["open_dataset", "has_vertex_correspondence"]


def open_dataset(ds: dict):
    """The reader for a ``dataset`` config section.

    Parameters
    ----------
    ds : dict
        The config's ``dataset`` mapping (keys as in ``config/README.md``).
    """
    fmt = ds.get("format", "bmd")
    root = Path(ds["root"])
    videos = ds.get("videos")
    if fmt == "algonauts2021":
        from alignpatterns.data.algonauts import Algonauts2021

        return Algonauts2021(root, heldout=int(ds.get("heldout", 100)), videos_dir=videos)
    if fmt != "bmd":
        raise ValueError(f"dataset.format {fmt!r}: expected bmd or algonauts2021")
    version = str(ds.get("version", "B"))
    space = ds.get("space", "fsLR32k")
    hemis = ds.get("hemispheres", "merge")
    if version == "A" or ds.get("betas", "prepared_betas") == "allvoxel":
        from alignpatterns.data.perroi import BMDPerROI

        return BMDPerROI(root, version=version, hemispheres=hemis, videos_dir=videos, space=space)
    from alignpatterns.data.bmd import BMDLayout

    return BMDLayout(root, space=space, version=version, atlas=ds.get("atlas", "synthetic"),
                     labels=ds.get("labels"), grayordinates=ds.get("grayordinates"),
                     hemispheres=hemis, videos_dir=videos)


def has_vertex_correspondence(ds: dict) -> bool:
    """Whether a vertex-wise mean across subjects is valid (SPEC.md §1): surface spaces only."""
    return (ds.get("format", "bmd") == "bmd" and ds.get("space", "fsLR32k") in
            ("fsLR32k", "fsaverage") and ds.get("betas", "prepared_betas") == "prepared_betas"
            and str(ds.get("version", "B")) == "B")
