"""Sums over the rows, eight lanes at a time, in one fixed order.

The kernels' loops over the rows vectorise wherever no value is carried from
one row to the next.  A sum over the rows carries one: compiled without
fastmath (which would let LLVM reorder it, and round differently in code
loaded from numba's cache than in code it had just compiled), a sum is one
row at a time.  These two write the order out instead: row ``i`` goes to
lane ``i % 8`` of eight partial sums, which are then added pairwise,
``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``.  The arithmetic is
spelled in LLVM IR as ``<8 x double>`` operations with no fast-math flags,
so every process and every machine computes the same bits: an instruction
set with narrower vectors (AVX2, SSE2) splits each operation into lane-wise
halves or quarters, which round exactly as the whole.

Compiled into :mod:`skhbnn.kernels.density`'s kernels (``abi._SOURCES``
stamps this file; ``abi._DEPENDENT`` drops density's cached code when it
changes).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic

LANES = 8


def _row_pointer(context, builder, array_type, array, offset):
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [offset])


def _lanes_sum(builder, load_product, n):
    """``<8 x double>`` partial sums of ``load_product(index, width)`` over
    ``n`` rows (whole blocks of eight, then the tail's row ``t`` into lane
    ``t``), added pairwise."""
    dbl = ir.DoubleType()
    vec = ir.VectorType(dbl, LANES)
    acc = cgutils.alloca_once_value(builder, ir.Constant(vec, [0.0] * LANES))
    lanes = ir.Constant(n.type, LANES)
    n_blocks = builder.sdiv(n, lanes)
    with cgutils.for_range(builder, n_blocks) as loop:
        value = load_product(builder.mul(loop.index, lanes), vec)
        builder.store(builder.fadd(builder.load(acc), value), acc)
    tail = builder.mul(n_blocks, lanes)
    with cgutils.for_range(builder, builder.sub(n, tail)) as loop:
        value = load_product(builder.add(tail, loop.index), dbl)
        lane = builder.trunc(loop.index, ir.IntType(32))
        partial = builder.load(acc)
        total = builder.fadd(builder.extract_element(partial, lane), value)
        builder.store(builder.insert_element(partial, total, lane), acc)
    partial = builder.load(acc)
    terms = [builder.extract_element(partial, ir.Constant(ir.IntType(32), k)) for k in range(LANES)]
    while len(terms) > 1:
        terms = [builder.fadd(terms[k], terms[k + 1]) for k in range(0, len(terms), 2)]
    return terms[0]


def _load(builder, pointer, index, kind):
    address = builder.gep(pointer, [index])
    if isinstance(kind, ir.VectorType):
        address = builder.bitcast(address, kind.as_pointer())
    return builder.load(address, align=8)


def _check(*arrays):
    for array in arrays:
        if not (isinstance(array, types.Array) and array.dtype == types.float64
                and array.layout == "C"):
            raise TypingError(f"rows: a C-contiguous float64 array expected, got {array}")


@intrinsic
def row_dot(typingctx, a, a_offset, b, b_offset, n):
    """``sum(a.flat[a_offset + i] * b.flat[b_offset + i] for i < n)`` in
    the lanes' order (module docstring); the caller keeps the ``n``
    elements inside both arrays."""
    _check(a, b)
    sig = types.float64(a, types.intp, b, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        pa = _row_pointer(context, builder, signature.args[0], args[0], args[1])
        pb = _row_pointer(context, builder, signature.args[2], args[2], args[3])

        def product(index, kind):
            return builder.fmul(_load(builder, pa, index, kind), _load(builder, pb, index, kind))

        return _lanes_sum(builder, product, args[4])

    return sig, codegen


@intrinsic
def row_sum(typingctx, a, a_offset, n):
    """``sum(a.flat[a_offset + i] for i < n)`` in the lanes' order."""
    _check(a)
    sig = types.float64(a, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        pa = _row_pointer(context, builder, signature.args[0], args[0], args[1])
        return _lanes_sum(builder, lambda index, kind: _load(builder, pa, index, kind), args[2])

    return sig, codegen
