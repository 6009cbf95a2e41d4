"""``python -m skhbnn reproduce ...``: the same as the ``skhbnn`` command."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
