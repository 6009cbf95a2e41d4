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

The JSON holds the estimator's class name, its ``get_params(deep=False)`` and
the fitted attributes that :mod:`skhbnn.registry` names for its class;
arrays live in ``/arrays`` and are referenced by name.  Posterior draws that
equal a variable of the saved posterior are stored once.  A SHA-256 checksum
over everything stored makes truncated or altered files fail loudly instead
of predicting garbage.

Whether a file loads depends on its layout, ``skhbnn_format_version``, and
not on the skhbnn version that wrote it (``skhbnn_version`` is informative):
every file of format :data:`FORMAT_VERSION` or older loads.

The code is split by responsibility: :mod:`skhbnn.persistence.codec` turns
estimators into JSON and arrays and back, :mod:`skhbnn.persistence.netcdf`
writes and reads the file.  Neither imports the estimator modules, nor
xarray, h5netcdf or ArviZ before they are needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import netcdf
from .codec import Decoder, Encoder, estimator_entry, loadable_class

#: The ``skhbnn_format`` attribute of every file :func:`save` writes.
FORMAT = "skhbnn-estimator"
#: The file layout :func:`save` writes; :func:`load` reads this one and older.
FORMAT_VERSION = 1


def _skhbnn_version() -> str:
    """This skhbnn's version (``skhbnn.__version__``, the one place it is
    written), stamped in files for information."""
    from .. import __version__

    return __version__


def save(estimator, path, *, include_idata: bool = True) -> Path:
    """Write a fitted skhbnn estimator to a portable netCDF file.

    The file holds the posterior draws used for prediction, the estimator's
    parameters and fitted attributes, and (by default) the full ``idata_``;
    it is stamped with the estimator class, the file format version and the
    skhbnn version.  It is written to a temporary file next to ``path`` and
    moved into place, so ``path`` is never left half-written.

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

    Raises
    ------
    TypeError
        If the estimator is not one of skhbnn's, or one of its parameters or
        fitted attributes has no portable form (use pickle or joblib then).

    Notes
    -----
    What is saved is ``get_params(deep=False)`` and the fitted attributes
    that ``fit`` sets and prediction needs (the list in
    :mod:`skhbnn.registry`); any other attribute set on the instance is not.
    Object-valued sample statistics (e.g. nutpie's ``divergence_message``)
    are stored as strings; attributes that netCDF cannot hold (booleans,
    dicts) are stored as integers or JSON text.

    Examples
    --------
    >>> import skhbnn
    >>> clf.save("model.nc")                    # doctest: +SKIP
    >>> clf2 = skhbnn.load("model.nc")          # doctest: +SKIP
    """
    from sklearn.utils.validation import check_is_fitted

    name = estimator_entry(estimator).cls.__name__
    check_is_fitted(estimator)
    encoder = Encoder(with_idata=include_idata)
    metadata = json.dumps(encoder.estimator(estimator, "estimator"), allow_nan=False)
    attrs = {"skhbnn_format": FORMAT, "skhbnn_format_version": FORMAT_VERSION,
             "skhbnn_version": _skhbnn_version(), "estimator_class": name}
    return netcdf.write_file(path, attrs, metadata, encoder.arrays, encoder.idata)


def load(path, *, estimator_class=None):
    """Load an estimator written by :func:`save`.

    Nothing is unpickled or evaluated: the file's JSON is decoded against a
    whitelist of types, and arrays are read as plain numbers.  Any file of
    format version :data:`FORMAT_VERSION` or older loads, whichever skhbnn
    version wrote it.

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
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not an skhbnn file, uses a newer file format than this
        skhbnn reads, holds a different or unknown estimator class, or is
        truncated or altered (checksum mismatch).
    """
    path = Path(os.fspath(path))
    where = repr(str(path))
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {where}")
    try:
        root_attrs, datasets = netcdf.read_file(path)
    except Exception as exc:
        raise ValueError(
            f"{where} could not be read as an skhbnn netCDF file; it may be "
            f"truncated or corrupted ({type(exc).__name__}: {exc})."
        ) from exc
    _check_header(where, root_attrs, estimator_class)
    if not netcdf.checksum_ok(root_attrs, datasets):
        raise ValueError(
            f"{where} failed its checksum: the file was altered or damaged "
            "after it was written. Save the estimator again."
        )
    try:
        text, arrays, idata = netcdf.contents(datasets)
        metadata = json.loads(text)
        if metadata.get("class") != root_attrs.get("estimator_class"):
            raise ValueError(f"{where} is inconsistent: its header and contents "
                             "name different estimator classes.")
        return Decoder(arrays, idata, where).estimator(metadata)
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{where} is not a valid skhbnn file ({type(exc).__name__}: {exc})."
        ) from exc


def _check_header(where: str, attrs: dict, expected) -> None:
    """Refuse a file that is not skhbnn's, of a newer format, or of another
    class than ``expected``.  The skhbnn version that wrote it is not checked."""
    if attrs.get("skhbnn_format") != FORMAT:
        raise ValueError(f"{where} is not a file written by skhbnn.save().")
    try:
        file_format = int(attrs.get("skhbnn_format_version"))
    except (TypeError, ValueError):
        raise ValueError(
            f"{where} has no valid skhbnn_format_version "
            f"({attrs.get('skhbnn_format_version')!r}); it was not written by skhbnn.save()."
        ) from None
    if file_format > FORMAT_VERSION:
        raise ValueError(
            f"{where} uses file format {file_format} (written by skhbnn "
            f"{attrs.get('skhbnn_version')}); this skhbnn ({_skhbnn_version()}) reads "
            f"format {FORMAT_VERSION} at most. Upgrade skhbnn to load it."
        )
    name = str(attrs.get("estimator_class"))
    loadable_class(name, where)
    if expected is not None:
        expected_name = expected if isinstance(expected, str) else expected.__name__
        if name != expected_name:
            raise ValueError(
                f"{where} holds an estimator of class {name}, not "
                f"{expected_name}; pass the right file, or load it without estimator_class."
            )


__all__ = ["FORMAT", "FORMAT_VERSION", "load", "save"]
