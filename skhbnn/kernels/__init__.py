"""skhbnn's numba kernels: the models' log density and gradient as nutpie's C callbacks.

Modules, in the order data flows through them:

``abi``      the header slots, activation and return codes, the ABI stamp (a leaf)
``problem``  a model and its data packed into a header (``pack_flat``,
             ``pack_hierarchical``); loading the callbacks, stamp checked
``density``  the fused forward/backward pass (numba ``njit``, cached)
``cfuncs``   the four C callbacks nutpie calls (numba ``cfunc``, cached)
``nutpie``   the callbacks as a nutpie model

Nothing here imports numba until a callback is needed.
"""
