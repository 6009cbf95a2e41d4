"""Griffe extension: render the Sphinx roles of skhbnn's docstrings in mkdocs.

The docstrings are numpydoc and use roles such as ``:class:`~skhbnn.MvNormalPrior```,
which mkdocstrings would print verbatim.  A role whose target is one of the
public names documented on the API page becomes a cross-reference; any other
role becomes inline code (a cross-reference to an undocumented object would be
a broken link, which the strict build rejects).
"""

from __future__ import annotations

import re

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|obj|data|exc):`(~?)([^`]+)`")


def _public_names() -> set[str]:
    import skhbnn

    return {name for name in skhbnn.__all__ if not name.startswith("_")}


class SphinxRoles(griffe.Extension):
    """Replace Sphinx roles in docstrings by autorefs links or inline code."""

    def __init__(self) -> None:
        super().__init__()
        self._public = _public_names()

    def _replace(self, match: re.Match) -> str:
        short, target = match.group(1), match.group(2)
        shown = target.rsplit(".", 1)[-1] if short else target
        last = target.rsplit(".", 1)[-1]
        if last in self._public and (target == last or target.startswith("skhbnn.")):
            return f"[`{shown}`][skhbnn.{last}]"
        return f"`{shown}`"

    def on_instance(self, *, obj, **kwargs) -> None:  # noqa: D102 - griffe hook
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(self._replace, obj.docstring.value)
