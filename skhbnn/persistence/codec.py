"""Estimators to JSON plus numeric arrays, and back.

Only a whitelist of types is encoded: JSON scalars, NumPy scalars and arrays,
lists, tuples, dicts, ``RandomState``, :class:`~skhbnn.network.NetworkSpec`,
:class:`~skhbnn.priors.MvNormalPrior`, :class:`~skhbnn.groups.GroupEncoder`
and the estimator classes of :func:`skhbnn.registry.registered`.  Anything
else raises ``TypeError`` naming where it was found, so a file never silently
loses state; decoding refuses anything it does not know with ``ValueError``.

An estimator is encoded by name: its ``get_params(deep=False)`` and the
fitted attributes its registry entry names (those present on the instance).
The estimator classes are never imported here: the registry is the whitelist.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..registry import registered
from .netcdf import idata_groups, make_idata

_TYPE = "__type__"


def estimator_entry(est):
    """The registry entry of ``est``'s class; ``TypeError`` for any other class."""
    known = registered()
    entry = known.get(type(est).__name__)
    if entry is None or entry.cls is not type(est):
        raise TypeError(
            f"save() supports the skhbnn estimators {sorted(known)}; got "
            f"{type(est).__module__}.{type(est).__qualname__}. Use pickle or joblib "
            "for other estimators."
        )
    return entry


def loadable_class(name: str, where: str):
    """The registered class called ``name``; ``ValueError`` if there is none."""
    known = registered()
    if name not in known:
        raise ValueError(
            f"{where} holds an estimator of class {name!r}, which this version of "
            f"skhbnn cannot load (known: {sorted(known)})."
        )
    return known[name]


class Encoder:
    """Turns an estimator into JSON plus ``arrays`` (``{name: ndarray}``) and
    ``idata`` (``{"idata_<k>": ArviZ container}``) to store beside it."""

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
        from ..groups import GroupEncoder
        from ..network import NetworkSpec
        from ..priors import MvNormalPrior, PopulationPrior

        if obj is None or isinstance(obj, (bool, str, int)):
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
        if isinstance(obj, (MvNormalPrior, PopulationPrior)):
            if id(obj) in self._ids:  # one prior shared by many estimators
                return {_TYPE: "ref", "id": self._ids[id(obj)]}
            # Every public dataclass field; "_chol" is a cache rebuilt on use.
            fields = {f.name: self.encode(getattr(obj, f.name), f"{where}.{f.name}")
                      for f in dataclasses.fields(obj) if not f.name.startswith("_")}
            return {_TYPE: type(obj).__name__, "id": self._new_id(obj), "fields": fields}
        if isinstance(obj, GroupEncoder):
            return {_TYPE: "GroupEncoder", "classes": self.array(obj.classes_, where)}
        if type(obj).__name__ in registered():
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
        """``get_params(deep=False)`` and the registry's fitted attributes."""
        entry = estimator_entry(est)
        if id(est) in self._ids:  # the same object twice (e.g. prefit=True)
            return {_TYPE: "ref", "id": self._ids[id(est)]}
        ident = self._new_id(est)
        params = est.get_params(deep=False)
        out = {_TYPE: "estimator", "class": entry.cls.__name__, "id": ident,
               "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()}}
        present = vars(est)
        idata = present.get("idata_")
        saved_idata = None
        if idata is not None and self.with_idata:
            saved_idata = f"idata_{len(self.idata)}"
            self.idata[saved_idata] = idata
        posterior = idata_groups(idata).get("posterior") if saved_idata else None
        state = {}
        for attr in entry.fitted:
            if attr not in present:
                continue
            value = present[attr]
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


class Decoder:
    """Rebuilds what :class:`Encoder` wrote from the JSON, the file's arrays
    (``{name: ndarray}``) and its ArviZ groups (``{"idata_<k>": {group: Dataset}}``)."""

    def __init__(self, arrays: dict, idata: dict, where: str = "the file"):
        self.arrays = arrays
        self.idata = idata
        self.where = where
        self._objects: dict[int, object] = {}

    def decode(self, obj):
        from ..groups import GroupEncoder
        from ..network import NetworkSpec
        from ..priors import MvNormalPrior, PopulationPrior

        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):
            return [self.decode(v) for v in obj]
        if not isinstance(obj, dict) or _TYPE not in obj:
            raise ValueError(f"unexpected JSON value {str(obj)[:80]!r} in {self.where}.")
        kind = obj[_TYPE]
        if kind == "float":
            if obj["value"] not in ("nan", "inf", "-inf"):
                raise ValueError(f"bad float {obj['value']!r} in {self.where}.")
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
            return {self._key(self.decode(k)): self.decode(v) for k, v in obj["items"]}
        if kind == "RandomState":
            rs = np.random.RandomState()
            rs.set_state(("MT19937", self.decode(obj["keys"]), obj["pos"],
                          obj["has_gauss"], self.decode(obj["cached_gaussian"])))
            return rs
        if kind == "NetworkSpec":
            fields = {k: v for k, v in obj.items() if k != _TYPE}
            fields["hidden_layer_sizes"] = tuple(fields["hidden_layer_sizes"])
            return NetworkSpec(**fields)
        if kind in ("MvNormalPrior", "PopulationPrior"):
            cls = MvNormalPrior if kind == "MvNormalPrior" else PopulationPrior
            prior = cls(**{k: self.decode(v) for k, v in obj["fields"].items()})
            self._objects[obj["id"]] = prior
            return prior
        if kind == "GroupEncoder":
            classes = self.decode(obj["classes"])
            encoder = GroupEncoder().fit(np.asarray(classes, dtype=object))
            if not np.array_equal(encoder.classes_, classes):  # order is part of the model
                raise ValueError(
                    f"the group labels in {self.where} cannot be restored in their order."
                )
            return encoder
        if kind == "posterior":
            return np.asarray(self.idata[obj["group"]]["posterior"][obj["var"]].values,
                              dtype=np.dtype(obj["dtype"]))
        if kind == "idata":
            return make_idata(self.idata[obj["group"]])
        if kind == "ref":
            return self._objects[obj["id"]]
        if kind == "estimator":
            return self.estimator(obj)
        raise ValueError(f"unknown value type {kind!r} in {self.where}.")

    def estimator(self, obj):
        """The registered class built from its params, with its fitted
        attributes set.  State the registry does not name for the class (a
        file written before saving went by name may hold some) is not restored."""
        entry = loadable_class(obj["class"], self.where)
        params = {k: self.decode(v) for k, v in obj["params"].items()}
        est = entry.cls(**params)
        self._objects[obj["id"]] = est
        for attr, value in obj["state"].items():
            if attr in entry.fitted:
                setattr(est, attr, self.decode(value))
        return est

    def _key(self, key):
        # save() encodes tuple keys as tagged tuples, so a JSON list (unhashable)
        # as a key means the file was not written by save().
        if isinstance(key, list):
            raise ValueError(f"a dict key in {self.where} is not hashable.")
        return key
