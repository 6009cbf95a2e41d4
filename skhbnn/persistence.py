"""Save fitted estimators to a portable netCDF file and load them back.

``pickle`` and ``joblib`` work too, but they tie a file to the Python, NumPy
and PyMC versions that wrote it, and unpickling a file runs code from it.  A
file written by :func:`save` holds only numbers, strings and JSON, and
:func:`load` rebuilds the estimator from those without unpickling or
evaluating anything.

Layout of the file (netCDF-4 / HDF5, written with the ``h5netcdf`` engine)::

    /                     attrs: skhbnn_format, skhbnn_format_version,
                          skhbnn_version, estimator_class, skhbnn_checksum;
                          variable ``metadata``: the estimator as JSON
    /arrays               every numeric array the JSON refers to
                          (posterior draws used by predict, prior means, ...)
    /idata_<k>/<group>    the estimator's ``idata_`` (posterior,
                          sample_stats, ...), one netCDF group per ArviZ group

The JSON holds the estimator's class name, its ``get_params()`` and its
fitted attributes; arrays live in ``/arrays`` and are referenced by name.
Posterior draws that equal a variable of the saved posterior are stored once.
A SHA-256 checksum over everything stored makes truncated or altered files
fail loudly instead of predicting garbage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "skhbnn-estimator"
FORMAT_VERSION = 1
_ENGINE = "h5netcdf"
_TYPE = "__type__"
# Attributes sklearn keeps on instances for metadata routing / set_output;
# they are per-session configuration, not part of a fitted model.
_SKIPPED_ATTRS = ("_metadata_request",)
_SKIPPED_PREFIXES = ("_sklearn",)


# ----------------------------------------------------------------- classes
def _estimator_classes() -> dict:
    """The estimator classes a file may name (a whitelist, never an import)."""
    from .classifiers import BayesianMLPClassifier, HierarchicalBayesianMLPClassifier

    classes = {
        "BayesianMLPClassifier": BayesianMLPClassifier,
        "HierarchicalBayesianMLPClassifier": HierarchicalBayesianMLPClassifier,
    }
    try:
        from .transfer import InformedPriorTransfer
    except ImportError:  # pragma: no cover - transfer is part of the package
        pass
    else:
        classes["InformedPriorTransfer"] = InformedPriorTransfer
    return classes


def _class_name(est) -> str:
    name = type(est).__name__
    known = _estimator_classes()
    if known.get(name) is not type(est):
        raise TypeError(
            f"save() supports the skhbnn estimators {sorted(known)}; got "
            f"{type(est).__module__}.{type(est).__qualname__}. Use pickle or joblib "
            "for other estimators."
        )
    return name


def _version_tuple(version: str) -> tuple[int, int]:
    parts = str(version).split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        raise ValueError(f"malformed skhbnn version {version!r} in the file.") from None


# ----------------------------------------------------------------- encoder
class _Encoder:
    """Turns an estimator into JSON plus a dict of numeric arrays.

    Only a whitelist of types is accepted; anything else raises ``TypeError``
    naming where it was found, so a file never silently loses state.
    """

    def __init__(self, with_idata: bool):
        self.arrays: dict[str, np.ndarray] = {}
        self.idata: dict[str, object] = {}
        self.with_idata = with_idata
        self._ids: dict[int, int] = {}
        self._keep: list = []

    def array(self, arr: np.ndarray, where: str):
        arr = np.asarray(arr)
        if arr.dtype.kind in "biuf":
            name = f"a{len(self.arrays)}"
            self.arrays[name] = np.ascontiguousarray(arr)
            return {_TYPE: "ndarray", "var": name, "dtype": arr.dtype.str}
        if arr.dtype.kind in "USO":
            items = [self.encode(x, f"{where}[{i}]") for i, x in enumerate(arr.ravel().tolist())]
            return {_TYPE: "ndarray", "items": items, "dtype": arr.dtype.str,
                    "shape": list(arr.shape)}
        raise TypeError(f"cannot save {where}: arrays of dtype {arr.dtype} are not supported.")

    def encode(self, obj, where: str):
        from .groups import GroupEncoder
        from .network import NetworkSpec
        from .priors import MvNormalPrior

        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return obj
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {_TYPE: "float", "value": repr(obj)}
        if isinstance(obj, np.generic) and obj.dtype.kind in "biufU":
            value = obj.item()
            if isinstance(value, float) and not math.isfinite(value):
                value = repr(value)
            return {_TYPE: "scalar", "dtype": obj.dtype.str, "value": value}
        if isinstance(obj, np.ndarray):
            return self.array(obj, where)
        if isinstance(obj, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        if isinstance(obj, tuple):
            return {_TYPE: "tuple",
                    "items": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        if isinstance(obj, dict):
            return {_TYPE: "dict", "items": [
                [self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                for k, v in obj.items()
            ]}
        if isinstance(obj, np.random.RandomState):
            _, keys, pos, has_gauss, cached = obj.get_state(legacy=True)
            return {_TYPE: "RandomState", "keys": self.array(keys, where),
                    "pos": int(pos), "has_gauss": int(has_gauss),
                    "cached_gaussian": self.encode(float(cached), where)}
        if isinstance(obj, NetworkSpec):
            return {_TYPE: "NetworkSpec", "n_features": obj.n_features,
                    "hidden_layer_sizes": list(obj.hidden_layer_sizes),
                    "n_outputs": obj.n_outputs, "activation": obj.activation,
                    "use_bias": obj.use_bias}
        if isinstance(obj, MvNormalPrior):
            if id(obj) in self._ids:  # one prior shared by many estimators
                return {_TYPE: "ref", "id": self._ids[id(obj)]}
            # Every public dataclass field; "_chol" is a cache rebuilt on use.
            fields = {f.name: self.encode(getattr(obj, f.name), f"{where}.{f.name}")
                      for f in dataclasses.fields(obj) if not f.name.startswith("_")}
            return {_TYPE: "MvNormalPrior", "id": self._new_id(obj), "fields": fields}
        if isinstance(obj, GroupEncoder):
            return {_TYPE: "GroupEncoder", "classes": self.array(obj.classes_, where)}
        if type(obj).__name__ in _estimator_classes():
            return self.estimator(obj, where)
        raise TypeError(
            f"cannot save {where}: values of type {type(obj).__name__} have no portable "
            "representation. Use pickle or joblib for this estimator."
        )

    def _new_id(self, obj) -> int:
        """Number an object that may be referenced again, so that objects
        shared in memory are shared again after loading."""
        self._ids[id(obj)] = len(self._ids)
        self._keep.append(obj)  # ids are only unique while objects live
        return self._ids[id(obj)]

    def estimator(self, est, where: str):
        name = _class_name(est)
        if id(est) in self._ids:  # the same object twice (e.g. prefit=True)
            return {_TYPE: "ref", "id": self._ids[id(est)]}
        ident = self._new_id(est)
        params = est.get_params(deep=False)
        out = {_TYPE: "estimator", "class": name, "id": ident,
               "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()}}
        state = {}
        idata = getattr(est, "idata_", None)
        saved_idata = None
        if idata is not None and self.with_idata:
            saved_idata = f"idata_{len(self.idata)}"
            self.idata[saved_idata] = idata
        posterior = _idata_groups(idata).get("posterior") if saved_idata else None
        for attr, value in vars(est).items():
            if attr in params or attr in _SKIPPED_ATTRS or attr.startswith(_SKIPPED_PREFIXES):
                continue
            if attr == "idata_":
                state[attr] = (
                    None if saved_idata is None else {_TYPE: "idata", "group": saved_idata}
                )
            elif attr == "posterior_draws_" and posterior is not None:
                state[attr] = {_TYPE: "dict", "items": [
                    [k, self._draw(k, v, posterior, saved_idata, f"{where}.{attr}")]
                    for k, v in value.items()
                ]}
            else:
                state[attr] = self.encode(value, f"{where}.{attr}")
        out["state"] = state
        return out

    def _draw(self, name, value, posterior, group, where):
        """Reference the posterior variable when it holds the same numbers."""
        value = np.asarray(value)
        if name in posterior.data_vars:
            stored = posterior[name].values
            if stored.shape == value.shape and np.array_equal(stored.astype(value.dtype), value):
                return {_TYPE: "posterior", "group": group, "var": name,
                        "dtype": value.dtype.str}
        return self.array(value, where)


class _Decoder:
    def __init__(self, arrays: dict, idata: dict):
        self.arrays = arrays
        self.idata = idata
        self._objects: dict[int, object] = {}

    def decode(self, obj):
        from .groups import GroupEncoder
        from .network import NetworkSpec
        from .priors import MvNormalPrior

        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):
            return [self.decode(v) for v in obj]
        if not isinstance(obj, dict) or _TYPE not in obj:
            raise ValueError(f"unexpected JSON value {str(obj)[:80]!r} in the file.")
        kind = obj[_TYPE]
        if kind == "float":
            if obj["value"] not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad float {obj['value']!r} in the file.")
            return float(obj["value"])
        if kind == "scalar":
            value = obj["value"]
            if isinstance(value, str) and value in ("nan", "inf", "-inf"):
                value = float(value)
            return np.array(value, dtype=np.dtype(obj["dtype"]))[()]
        if kind == "ndarray":
            dtype = np.dtype(obj["dtype"])
            if "var" in obj:
                return np.asarray(self.arrays[obj["var"]], dtype=dtype)
            items = [self.decode(v) for v in obj["items"]]
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out.astype(dtype).reshape(obj["shape"])
        if kind == "tuple":
            return tuple(self.decode(v) for v in obj["items"])
        if kind == "dict":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in obj["items"]}
        if kind == "RandomState":
            rs = np.random.RandomState()
            rs.set_state(("MT19937", self.decode(obj["keys"]), obj["pos"],
                          obj["has_gauss"], self.decode(obj["cached_gaussian"])))
            return rs
        if kind == "NetworkSpec":
            fields = {k: v for k, v in obj.items() if k != _TYPE}
            fields["hidden_layer_sizes"] = tuple(fields["hidden_layer_sizes"])
            return NetworkSpec(**fields)
        if kind == "MvNormalPrior":
            prior = MvNormalPrior(**{k: self.decode(v) for k, v in obj["fields"].items()})
            self._objects[obj["id"]] = prior
            return prior
        if kind == "GroupEncoder":
            classes = self.decode(obj["classes"])
            encoder = GroupEncoder().fit(np.asarray(classes, dtype=object))
            if not np.array_equal(encoder.classes_, classes):  # order is part of the model
                raise ValueError("the file's group labels cannot be restored in their order.")
            return encoder
        if kind == "posterior":
            return np.asarray(self.idata[obj["group"]]["posterior"][obj["var"]].values,
                              dtype=np.dtype(obj["dtype"]))
        if kind == "idata":
            return _make_idata(self.idata[obj["group"]])
        if kind == "ref":
            return self._objects[obj["id"]]
        if kind == "estimator":
            return self.estimator(obj)
        raise ValueError(f"unknown value type {kind!r} in the file.")

    def estimator(self, obj):
        classes = _estimator_classes()
        if obj["class"] not in classes:
            raise ValueError(
                f"the file holds an estimator of class {obj['class']!r}, which this "
                f"version of skhbnn cannot load (known: {sorted(classes)})."
            )
        cls = classes[obj["class"]]
        params = {k: self.decode(v) for k, v in obj["params"].items()}
        est = cls(**params)
        self._objects[obj["id"]] = est
        for attr, value in obj["state"].items():
            setattr(est, attr, self.decode(value))
        return est


def _hashable(key):
    # save() encodes tuple keys as tagged tuples, so a JSON list (unhashable)
    # as a key means the file was not written by save().
    if isinstance(key, list):
        raise ValueError("a dict key in the file is not hashable.")
    return key


# ------------------------------------------------------------------ idata
def _idata_groups(idata) -> dict:
    """``{group: xarray.Dataset}`` of ArviZ 0.x InferenceData or a DataTree."""
    if idata is None:
        return {}
    if hasattr(idata, "children"):  # xarray DataTree (ArviZ 1.x / PyMC 6)
        return {name: node.to_dataset() for name, node in idata.children.items()}
    return {name: getattr(idata, name) for name in idata.groups()}


def _make_idata(groups: dict):
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
        ds.attrs["skhbnn_none_as_empty"] = json.dumps(none_as_empty)
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
    listed = ds.attrs.pop("skhbnn_none_as_empty", None)
    for name in json.loads(listed) if listed else []:
        values = ds[name].values.astype(object)
        values[values == ""] = None
        ds[name] = ds[name].copy(data=values)
    return ds


# -------------------------------------------------------------- checksum
def _digest(root_attrs: dict, datasets: dict) -> str:
    """SHA-256 over every attribute, variable and value, as read from the file."""
    h = hashlib.sha256()

    def feed(text: str):
        h.update(text.encode("utf-8"))
        h.update(b"\0")

    def attrs_text(attrs):
        return json.dumps(
            {k: (v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v)
             for k, v in sorted(attrs.items()) if k != "skhbnn_checksum"},
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


def _read_file(path):
    """Root attributes and every group as an in-memory Dataset (file closed)."""
    import xarray as xr

    paths, root_attrs = _group_paths(path)
    datasets = {"/": xr.load_dataset(path, engine=_ENGINE)}
    for group in paths:
        datasets[group] = xr.load_dataset(path, group=group, engine=_ENGINE)
    return root_attrs, datasets


# ------------------------------------------------------------------ public
def save(estimator, path, *, include_idata: bool = True) -> Path:
    """Write a fitted skhbnn estimator to a portable netCDF file.

    The file holds the posterior draws used for prediction, the estimator's
    parameters and fitted attributes, and (by default) the full ``idata_``;
    it is stamped with the estimator class and the skhbnn version.  It is
    written to a temporary file next to ``path`` and moved into place, so
    ``path`` is never left half-written.

    Parameters
    ----------
    estimator : BayesianMLPClassifier, HierarchicalBayesianMLPClassifier or InformedPriorTransfer
        A fitted estimator.
    path : str or os.PathLike
        Destination, conventionally ending in ``.nc``.
    include_idata : bool, default=True
        Also store ``idata_`` (posterior, sample stats, ...).  With ``False``
        only what prediction needs is stored and the loaded estimator's
        ``idata_`` is ``None``.

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    Object-valued sample statistics (e.g. nutpie's ``divergence_message``)
    are stored as strings; attributes that netCDF cannot hold (booleans,
    dicts) are stored as integers or JSON text.

    Examples
    --------
    >>> import skhbnn
    >>> clf.save("model.nc")                    # doctest: +SKIP
    >>> clf2 = skhbnn.load("model.nc")          # doctest: +SKIP
    """
    import h5netcdf
    import xarray as xr
    from sklearn.utils.validation import check_is_fitted

    from . import __version__

    name = _class_name(estimator)
    check_is_fitted(estimator)
    encoder = _Encoder(with_idata=include_idata)
    metadata = json.dumps(encoder.estimator(estimator, "estimator"), allow_nan=False)

    path = Path(os.fspath(path))
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        root = xr.Dataset(
            {"metadata": ((), metadata)},
            attrs={"skhbnn_format": FORMAT, "skhbnn_format_version": FORMAT_VERSION,
                   "skhbnn_version": __version__, "estimator_class": name},
        )
        root.to_netcdf(tmp, mode="w", engine=_ENGINE)
        arrays = xr.Dataset({
            key: ([f"{key}_d{i}" for i in range(arr.ndim)], arr)
            for key, arr in encoder.arrays.items()
        })
        arrays.to_netcdf(tmp, mode="a", group="arrays", engine=_ENGINE)
        _write_idata(tmp, encoder.idata)
        root_attrs, datasets = _read_file(tmp)
        with h5netcdf.File(tmp, "r+") as f:
            f.attrs["skhbnn_checksum"] = _digest(root_attrs, datasets)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _write_idata(tmp, idata: dict) -> None:
    import xarray as xr

    for key, data in idata.items():
        groups = _idata_groups(data)
        xr.Dataset(attrs={"groups": json.dumps(list(groups))}).to_netcdf(
            tmp, mode="a", group=key, engine=_ENGINE
        )
        for group, ds in groups.items():
            _netcdf_ready(ds).to_netcdf(tmp, mode="a", group=f"{key}/{group}", engine=_ENGINE)


def load(path, *, estimator_class=None):
    """Load an estimator written by :func:`save`.

    Nothing is unpickled or evaluated: the file's JSON is decoded against a
    whitelist of types, and arrays are read as plain numbers.

    Parameters
    ----------
    path : str or os.PathLike
    estimator_class : type or str, default=None
        If given, the file must hold an estimator of this class.

    Returns
    -------
    estimator
        Fitted, predicting exactly as the saved one did.

    Raises
    ------
    ValueError
        If the file is not an skhbnn file, was written by an incompatible
        skhbnn version (another major.minor), holds a different or unknown
        estimator class, or is truncated or altered (checksum mismatch).
    """
    from . import __version__

    path = Path(os.fspath(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {str(path)!r}")
    try:
        root_attrs, datasets = _read_file(path)
    except Exception as exc:
        raise ValueError(
            f"{str(path)!r} could not be read as an skhbnn netCDF file; it may be "
            f"truncated or corrupted ({type(exc).__name__}: {exc})."
        ) from exc
    _check_header(path, root_attrs, __version__, estimator_class)
    stored = root_attrs.get("skhbnn_checksum")
    if stored is None or str(stored) != _digest(root_attrs, datasets):
        raise ValueError(
            f"{str(path)!r} failed its checksum: the file was altered or damaged "
            "after it was written. Save the estimator again."
        )
    try:
        metadata = json.loads(str(datasets["/"]["metadata"].values[()]))
        idata = {}
        for group in datasets:
            if group.startswith("idata_") and "/" not in group:
                names = json.loads(datasets[group].attrs["groups"])
                idata[group] = {
                    n: _restore_dataset(datasets[f"{group}/{n}"]) for n in names
                }
        arrays = {k: v.values for k, v in datasets["arrays"].data_vars.items()}
        if metadata.get("class") != root_attrs.get("estimator_class"):
            raise ValueError(f"{str(path)!r} is inconsistent: its header and contents "
                             "name different estimator classes.")
        return _Decoder(arrays, idata).estimator(metadata)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a valid skhbnn file ({type(exc).__name__}: {exc})."
        ) from exc


def _check_header(path, attrs, version, expected) -> None:
    if attrs.get("skhbnn_format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a file written by skhbnn.save().")
    file_format = int(attrs.get("skhbnn_format_version", -1))
    if file_format > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} uses file format {file_format}; this skhbnn ({version}) reads "
            f"format {FORMAT_VERSION} at most. Upgrade skhbnn to load it."
        )
    file_version = str(attrs.get("skhbnn_version"))
    if _version_tuple(file_version) != _version_tuple(version):
        raise ValueError(
            f"{str(path)!r} was written by skhbnn {file_version}, which is not compatible "
            f"with the installed skhbnn {version} (the major.minor versions must match). "
            f"Load it with skhbnn {'.'.join(file_version.split('.')[:2])}.x and refit or "
            "save it again with this version."
        )
    name = str(attrs.get("estimator_class"))
    known = _estimator_classes()
    if name not in known:
        raise ValueError(
            f"{str(path)!r} holds an estimator of class {name!r}, which skhbnn cannot "
            f"load (known: {sorted(known)})."
        )
    if expected is not None:
        expected_name = expected if isinstance(expected, str) else expected.__name__
        if name != expected_name:
            raise ValueError(
                f"{str(path)!r} holds an estimator of class {name}, not "
                f"{expected_name}; pass the right file, or load it without estimator_class."
            )


__all__ = ["load", "save"]
