"""ROI definitions: per-vertex label files and the BMD MNI152 ROI index files.

Supported label files (``dataset.labels``):

- ``*.dlabel.nii`` (CIFTI-2, e.g. the HCP-MMP1.0 Glasser parcellation): the label map is placed on
  the 91,282 fsLR32k grayordinates through its ``BrainModelAxis``, structure by structure and
  vertex by vertex. The grayordinate order of the betas is taken from ``dataset.grayordinates`` (any
  91k CIFTI file of the dataset, e.g. an fMRIPrep ``*_den-91k_bold.dtseries.nii``); without it, a
  label file that already has one entry per grayordinate is used as is, and a cortex-only file is
  placed on the standard HCP 91k layout (left cortex 29,696, right cortex 29,716 vertices first).
- ``*.npy`` (one integer per vertex) with a ``*.tsv`` sidecar of the same stem (``index<TAB>name``).
- FreeSurfer ``*.annot`` per hemisphere (fsaverage): a path containing ``{hemi}`` (``lh``/``rh``),
  left then right on the vertex axis.

Parcels are matched **by name**, never by numeric key (keys differ between sources): ROI ``V1``
is the parcel ``V1`` if present, else the union of ``L_V1_ROI`` and ``R_V1_ROI`` (Glasser names);
with ``hemispheres: separate`` the ROI names carry the hemisphere (``L_V1_ROI``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alignpatterns.data.safe_pickle import DataFormatError, load_pickle

__all__ = ["LabelMap", "load_labels", "load_npy_labels", "load_dlabel", "load_annot_pair",
           "parcel_names", "mni_roi_indices"]

#: Standard HCP 91k grayordinates: cortex vertices per hemisphere, subcortical voxels.
HCP91K = {"CIFTI_STRUCTURE_CORTEX_LEFT": 29696, "CIFTI_STRUCTURE_CORTEX_RIGHT": 29716}
N_GRAYORDINATES = 91282


class LabelMap:
    """Per-vertex integer labels and the parcel name → label lookup.

    Parameters
    ----------
    labels : ndarray of int, shape (n_vertices,)
        0 (or any key not in ``lookup``) = unlabelled.
    lookup : dict of str to int or tuple of int
        A parcel name's label, or labels (a name shared by both hemispheres of an annotation
        pair).
    source : str
        File(s) the labels came from (named in errors).
    """

    def __init__(self, labels: np.ndarray, lookup: dict[str, int | tuple[int, ...]],
                 source: str):
        self.labels = np.asarray(labels)
        self.lookup = dict(lookup)
        self.source = source

    def indices(self, roi: str, hemispheres: str = "merge") -> np.ndarray:
        """Vertex indices of ``roi`` (sorted), matched by name (:func:`parcel_names`): the parcel
        named ``roi`` if there is one, else the union of its hemisphere parcels."""
        names = [n for n in parcel_names(roi, hemispheres) if n in self.lookup]
        if not names:
            raise DataFormatError(
                f"{self.source}: expected a parcel named {' or '.join(parcel_names(roi, hemispheres))}"
                f" for ROI {roi!r}, found none (parcels: {_preview(self.lookup)})")
        if roi in names:
            names = [roi]
        keys = [int(k) for n in names for k in np.atleast_1d(self.lookup[n])]
        return np.flatnonzero(np.isin(self.labels, keys))

    def check_length(self, n_vertices: int, betas_file) -> None:
        """The label file must have one entry per vertex of the betas."""
        if self.labels.shape != (n_vertices,):
            raise DataFormatError(
                f"{self.source}: expected one label per vertex of {betas_file} "
                f"({n_vertices}), found {self.labels.shape[0]} labels")


def _preview(lookup) -> str:
    names = sorted(lookup)
    return ", ".join(names[:12]) + (f", … ({len(names)} in all)" if len(names) > 12 else "")


def parcel_names(roi: str, hemispheres: str = "merge") -> list[str]:
    """Names a ROI matches: itself, then (merged) its left and right Glasser/BMD parcels."""
    if hemispheres == "separate":
        return [roi]
    return [roi, f"L_{roi}_ROI", f"R_{roi}_ROI", f"l{roi}", f"r{roi}"]


def load_labels(path: str | Path, grayordinates: str | Path | None = None) -> LabelMap:
    """Load a label file of any supported kind (see the module docstring)."""
    text = str(path)
    if "{hemi}" in text:
        return load_annot_pair(text)
    path = Path(path)
    if text.endswith(".dlabel.nii"):
        return load_dlabel(path, grayordinates)
    if path.suffix == ".npy":
        return load_npy_labels(path, path.with_suffix(".tsv"))
    raise DataFormatError(f"{path}: expected a label file ending in .dlabel.nii, .npy (with a "
                          ".tsv sidecar) or a FreeSurfer .annot path containing '{{hemi}}'")


def load_npy_labels(npy: Path, tsv: Path) -> LabelMap:
    """Integer labels from ``npy`` and names from ``tsv`` (header ``index<TAB>name``)."""
    for p in (npy, tsv):
        if not Path(p).exists():
            raise DataFormatError(f"{p}: ROI label file not found")
    try:
        labels = np.load(npy, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataFormatError(f"{npy}: expected a 1-D integer .npy label array ({err})") from None
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise DataFormatError(f"{npy}: expected a 1-D integer label array, found "
                              f"{labels.dtype} shape {labels.shape}")
    lines = Path(tsv).read_text().strip().splitlines()
    if not lines or lines[0].split("\t")[:2] != ["index", "name"]:
        raise DataFormatError(f"{tsv}: expected a header 'index<TAB>name'")
    lookup = {}
    for k, line in enumerate(lines[1:], start=2):
        parts = line.split("\t")
        try:
            lookup[parts[1]] = int(parts[0])
        except (IndexError, ValueError):
            raise DataFormatError(f"{tsv}: line {k}: expected 'index<TAB>name', found "
                                  f"{line!r}") from None
    return LabelMap(labels, lookup, f"{npy}")


def load_dlabel(path: Path, grayordinates: str | Path | None = None) -> LabelMap:
    """A CIFTI-2 dlabel placed on the betas' grayordinates (see the module docstring)."""
    import nibabel as nib

    if not path.exists():
        raise DataFormatError(f"{path}: ROI label file not found")
    try:
        img = nib.load(path)
        label_ax, models = img.header.get_axis(0), img.header.get_axis(1)
        data = np.asarray(img.dataobj)
    except Exception as err:  # nibabel raises many types on a bad file
        raise DataFormatError(f"{path}: expected a CIFTI-2 dlabel file ({type(err).__name__}: "
                              f"{err})") from None
    if not isinstance(label_ax, nib.cifti2.LabelAxis) or not isinstance(
            models, nib.cifti2.BrainModelAxis):
        raise DataFormatError(f"{path}: expected a dlabel with a LabelAxis and a BrainModelAxis, "
                              f"found {type(label_ax).__name__} × {type(models).__name__}")
    values = data[0].astype(np.int64)
    lookup = {name: int(key) for key, (name, _rgba) in label_ax.label[0].items()}
    if grayordinates is not None:
        target = _reference_axis(Path(grayordinates))
        labels = _place(values, models, target, path)
    elif len(models) == N_GRAYORDINATES:
        labels = values
    else:
        labels = _place_standard(values, models, path)
    return LabelMap(labels, lookup, str(path))


def _reference_axis(path: Path):
    import nibabel as nib

    if not path.exists():
        raise DataFormatError(f"{path}: grayordinate reference file not found "
                              "(dataset.grayordinates)")
    try:
        hdr = nib.load(path).header
        axes = [hdr.get_axis(i) for i in range(len(hdr.matrix.mapped_indices))]
    except Exception as err:
        raise DataFormatError(f"{path}: expected a CIFTI-2 file ({err})") from None
    for ax in axes:
        if isinstance(ax, nib.cifti2.BrainModelAxis):
            return ax
    raise DataFormatError(f"{path}: expected a CIFTI-2 file with a BrainModelAxis")


def _surface_map(models) -> dict[str, dict[int, int]]:
    """structure → {surface vertex: position on the axis}."""
    out: dict[str, dict[int, int]] = {}
    for name, sl, bm in models.iter_structures():
        if bm.surface_mask.any():
            pos = np.arange(sl.start or 0, (sl.start or 0) + len(bm))
            out[name] = dict(zip(bm.vertex[bm.surface_mask].tolist(),
                                 pos[bm.surface_mask].tolist(), strict=True))
    return out


def _place(values, models, target, path) -> np.ndarray:
    """Labels on the grayordinates of ``target``; vertices absent from the label file get 0."""
    labels = np.zeros(len(target), dtype=np.int64)
    src = _surface_map(models)
    if not src:
        raise DataFormatError(f"{path}: expected surface (cortex) structures in the dlabel, "
                              "found none")
    for name, sl, bm in target.iter_structures():
        if name not in src or not bm.surface_mask.any():
            continue
        lut = src[name]
        start = sl.start or 0
        for k, v in enumerate(bm.vertex.tolist()):
            pos = lut.get(v)
            if pos is not None:
                labels[start + k] = values[pos]
    return labels


def _place_standard(values, models, path) -> np.ndarray:
    """Cortex-only dlabel on the standard 91k layout (left, right cortex first)."""
    labels = np.zeros(N_GRAYORDINATES, dtype=np.int64)
    offset = 0
    found = {name: (sl, len(bm)) for name, sl, bm in models.iter_structures()}
    for name, n in HCP91K.items():
        if name not in found or found[name][1] != n:
            have = {k: v[1] for k, v in found.items()}
            raise DataFormatError(
                f"{path}: expected {N_GRAYORDINATES} grayordinates or the standard 91k cortex "
                f"({HCP91K}), found {len(models)} grayordinates with {have}; set "
                "dataset.grayordinates to a 91k CIFTI file of the dataset to map it")
        sl = found[name][0]
        labels[offset:offset + n] = values[sl]
        offset += n
    return labels


def load_annot_pair(pattern: str) -> LabelMap:
    """FreeSurfer annotations ``pattern.format(hemi='lh'|'rh')``, left then right.

    Right-hemisphere keys are offset so that the two hemispheres' parcels stay distinct. A
    parcel name means the parcel in both hemispheres (FreeSurfer atlases such as aparc use the
    same names left and right); ``l<name>`` and ``r<name>`` name one hemisphere's parcel.
    """
    import nibabel as nib

    labels, lookup, offset = [], {}, 0
    lookup: dict[str, tuple[int, ...]]
    for hemi in ("lh", "rh"):
        p = Path(pattern.format(hemi=hemi))
        if not p.exists():
            raise DataFormatError(f"{p}: ROI label file not found")
        try:
            lab, _ctab, names = nib.freesurfer.read_annot(str(p))
        except Exception as err:
            raise DataFormatError(f"{p}: expected a FreeSurfer .annot file ({err})") from None
        lab = np.where(lab >= 0, lab + offset, -1)
        for k, n in enumerate(names):
            name = n.decode() if isinstance(n, bytes) else str(n)
            lookup[name] = (*lookup.get(name, ()), k + offset)
            lookup[f"{hemi[0]}{name}"] = (k + offset,)
        labels.append(lab)
        offset += len(names)
    return LabelMap(np.concatenate(labels), lookup, pattern)


def mni_roi_indices(roi_dir: Path, roi: str, hemispheres: str, n_voxels: int) -> np.ndarray:
    """Voxel indices (into the group-mask voxel axis) of a BMD MNI152 ROI.

    Reads ``ROI-<name>_indices.pkl`` (element ``[1]``: indices into the flattened group mask);
    with ``hemispheres: merge`` the ROI ``V1v`` is the union of ``lV1v`` and ``rV1v``.
    ``WB`` is every voxel.
    """
    if roi == "WB":
        return np.arange(n_voxels)
    names = [roi]
    if hemispheres == "merge" and not (roi_dir / f"ROI-{roi}_indices.pkl").exists():
        names = [f"l{roi}", f"r{roi}"]
    parts = []
    for name in names:
        path = roi_dir / f"ROI-{name}_indices.pkl"
        obj = load_pickle(path)
        if not isinstance(obj, (tuple, list)) or len(obj) < 2:
            raise DataFormatError(f"{path}: expected a sequence (ijk, indices, mask), found "
                                  f"{type(obj).__name__}")
        idx = np.asarray(obj[1]).ravel()
        if not np.issubdtype(idx.dtype, np.integer):
            raise DataFormatError(f"{path}: expected integer voxel indices at [1], found "
                                  f"{idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= n_voxels):
            raise DataFormatError(f"{path}: expected voxel indices in [0, {n_voxels}) (the "
                                  f"betas' voxel axis), found {idx.min()}..{idx.max()}")
        parts.append(idx)
    return np.unique(np.concatenate(parts)).astype(np.int64)
