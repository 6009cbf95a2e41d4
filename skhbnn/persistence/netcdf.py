"""The netCDF side of a saved file: layout, ArviZ groups, checksum.

A leaf module (it imports nothing from skhbnn); xarray, h5netcdf and ArviZ
are imported by the functions that use them.  :mod:`skhbnn.persistence`
describes the layout; this module writes and reads it:

* :func:`write_file` writes the root (attributes and the JSON ``metadata``),
  ``/arrays`` and the ``/idata_<k>`` groups to a temporary file, stamps the
  checksum and moves the file into place;
* :func:`read_file` reads every group back into memory, and :func:`contents`
  splits them into the JSON text, the arrays and the ArviZ groups;
* :func:`digest` is the checksum, :func:`idata_groups` / :func:`make_idata`
  convert between ArviZ containers (InferenceData or DataTree) and
  ``{group: Dataset}``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

ENGINE = "h5netcdf"
CHECKSUM = "skhbnn_checksum"
# netCDF has no None in string arrays: the variables whose None were stored
# as "" are listed in this dataset attribute.
_NONE_AS_EMPTY = "skhbnn_none_as_empty"


# ------------------------------------------------------------------ idata
def idata_groups(idata) -> dict:
    """``{group: xarray.Dataset}`` of ArviZ 0.x InferenceData or a DataTree."""
    if idata is None:
        return {}
    if hasattr(idata, "children"):  # xarray DataTree (ArviZ 1.x / PyMC 6)
        return {name: node.to_dataset() for name, node in idata.children.items()}
    return {name: getattr(idata, name) for name in idata.groups()}


def make_idata(groups: dict):
    """The installed ArviZ's container: DataTree for ArviZ >= 1, else InferenceData."""
    import arviz as az

    if int(az.__version__.split(".")[0]) >= 1:
        import xarray as xr

        return xr.DataTree.from_dict(dict(groups))
    return az.InferenceData(**groups)


def _netcdf_ready(ds):
    """A copy of ``ds`` that netCDF can store (it has no bool or dict attributes
    and no object arrays); what was changed is noted so loading can undo it."""
    ds = ds.copy(deep=False)
    none_as_empty = []
    for name in list(ds.variables):
        var = ds.variables[name]
        if var.dtype.kind == "O":
            flat = var.values.ravel().tolist()
            if all(v is None or isinstance(v, str) for v in flat):
                ds[name] = var.copy(data=np.array(
                    ["" if v is None else v for v in flat], dtype=str
                ).reshape(var.shape))
                none_as_empty.append(name)
            else:  # no portable form; prediction never needs these
                ds = ds.drop_vars(name)
                continue
        var = ds.variables[name]
        var.attrs = _netcdf_attrs(var.attrs)
        # Encodings carried over from a file this data was loaded from would
        # conflict with the new layout; let xarray choose afresh.
        var.encoding = {}
    ds.attrs = _netcdf_attrs(ds.attrs)
    ds.encoding = {}
    if none_as_empty:
        ds.attrs[_NONE_AS_EMPTY] = json.dumps(none_as_empty)
    return ds


def _netcdf_attrs(attrs: dict) -> dict:
    out = {k: _netcdf_attr(v) for k, v in attrs.items()}
    return {k: v for k, v in out.items() if v is not None}


def _netcdf_attr(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (str, int, float, np.number)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return value
    return json.dumps(value, default=str)


def _restore_dataset(ds):
    """Undo :func:`_netcdf_ready`'s ``None`` -> ``""`` (on the loaded copy)."""
    listed = ds.attrs.pop(_NONE_AS_EMPTY, None)
    for name in json.loads(listed) if listed else []:
        values = ds[name].values.astype(object)
        values[values == ""] = None
        ds[name] = ds[name].copy(data=values)
    return ds


# -------------------------------------------------------------- checksum
def digest(root_attrs: dict, datasets: dict) -> str:
    """SHA-256 over every attribute, variable and value, as read from the file."""
    h = hashlib.sha256()

    def feed(text: str):
        h.update(text.encode("utf-8"))
        h.update(b"\0")

    def attrs_text(attrs):
        return json.dumps(
            {k: (v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v)
             for k, v in sorted(attrs.items()) if k != CHECKSUM},
            sort_keys=True, default=str,
        )

    feed(attrs_text(root_attrs))
    for group in sorted(datasets):
        ds = datasets[group]
        feed(group)
        feed(attrs_text(ds.attrs))
        for name in sorted(ds.variables):
            var = ds.variables[name]
            feed(f"{name}|{var.dims}|{var.dtype.str}|{var.shape}|{attrs_text(var.attrs)}")
            values = np.asarray(var.values)
            if values.dtype.kind in "biufcmM":
                h.update(np.ascontiguousarray(values).tobytes())
            else:
                feed(json.dumps([str(v) for v in values.ravel().tolist()]))
    return h.hexdigest()


def checksum_ok(root_attrs: dict, datasets: dict) -> bool:
    """Whether the file's stamped checksum matches what was read."""
    stored = root_attrs.get(CHECKSUM)
    return stored is not None and str(stored) == digest(root_attrs, datasets)


# ------------------------------------------------------------------ write
def write_file(path, attrs: dict, metadata: str, arrays: dict, idata: dict) -> Path:
    """Write the file atomically: to a temporary file next to ``path``, which
    is checksummed and then renamed, so ``path`` is never half-written.

    ``attrs`` are the root attributes, ``metadata`` the JSON text, ``arrays``
    ``{name: ndarray}`` for ``/arrays`` and ``idata`` ``{"idata_<k>": ArviZ
    container}``.
    """
    import h5netcdf
    import xarray as xr

    path = Path(os.fspath(path))
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        root = xr.Dataset({"metadata": ((), metadata)}, attrs=attrs)
        root.to_netcdf(tmp, mode="w", engine=ENGINE)
        xr.Dataset({
            key: ([f"{key}_d{i}" for i in range(arr.ndim)], arr)
            for key, arr in arrays.items()
        }).to_netcdf(tmp, mode="a", group="arrays", engine=ENGINE)
        write_idata(tmp, idata)
        root_attrs, datasets = read_file(tmp)
        with h5netcdf.File(tmp, "r+") as f:
            f.attrs[CHECKSUM] = digest(root_attrs, datasets)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_idata(path, idata: dict) -> None:
    """One netCDF group per ArviZ group, under ``/idata_<k>``, which lists them."""
    import xarray as xr

    for key, data in idata.items():
        groups = idata_groups(data)
        xr.Dataset(attrs={"groups": json.dumps(list(groups))}).to_netcdf(
            path, mode="a", group=key, engine=ENGINE
        )
        for group, ds in groups.items():
            _netcdf_ready(ds).to_netcdf(path, mode="a", group=f"{key}/{group}", engine=ENGINE)


# ------------------------------------------------------------------- read
def _group_paths(path) -> tuple[list[str], dict]:
    import h5netcdf

    paths = []

    def walk(group, prefix):
        for name, child in group.groups.items():
            paths.append(prefix + name)
            walk(child, prefix + name + "/")

    with h5netcdf.File(path, "r") as f:
        walk(f, "")
        root_attrs = dict(f.attrs)
    return paths, root_attrs


def read_file(path) -> tuple[dict, dict]:
    """Root attributes and ``{group path: Dataset}`` of every group (``"/"``
    the root), read into memory; the file is closed on return."""
    import xarray as xr

    paths, root_attrs = _group_paths(path)
    datasets = {"/": xr.load_dataset(path, engine=ENGINE)}
    for group in paths:
        datasets[group] = xr.load_dataset(path, group=group, engine=ENGINE)
    return root_attrs, datasets


def contents(datasets: dict) -> tuple[str, dict, dict]:
    """The JSON text, ``{name: ndarray}`` of ``/arrays`` and ``{"idata_<k>":
    {group: Dataset}}`` of what :func:`read_file` returned.

    Raises ``KeyError`` for a file that lacks part of the layout.
    """
    metadata = str(datasets["/"]["metadata"].values[()])
    arrays = {k: v.values for k, v in datasets["arrays"].data_vars.items()}
    idata = {}
    for group in datasets:
        if group.startswith("idata_") and "/" not in group:
            names = json.loads(datasets[group].attrs["groups"])
            idata[group] = {n: _restore_dataset(datasets[f"{group}/{n}"]) for n in names}
    return metadata, arrays, idata
