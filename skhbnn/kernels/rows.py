"""Sums over the rows, eight lanes at a time, in one fixed order; products
of a layer eight rows at a time, held in registers.

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

:func:`rows_combination` is the other kind of loop a layer runs: one output
row as a weighted sum of ``count`` input rows.  Written as a loop over the
inputs per row, it would load and store the output row once per input;
here eight rows' partial sums stay in a register while the inputs are added
in order, ``((start + w0 x0) + w1 x1) + ...``, so every row's value is
the same bits the loop computes.

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


@intrinsic
def rows_combination(typingctx, out, out_offset, start, x, x_offset, x_stride, w, w_offset,
                     w_stride, count, n):
    """``out.flat[out_offset + i] = ((s + w_0 x_0[i]) + w_1 x_1[i]) + ...`` for
    ``i < n``, where ``x_k[i] = x.flat[x_offset + k * x_stride + i]`` and
    ``w_k = w.flat[w_offset + k * w_stride]``, ``k < count``; ``s`` is
    ``start``, or with ``start`` None the sum begins at ``w_0 x_0[i]``
    itself (no ``0.0 +``).  Eight rows at a time in registers, the rows
    after the last whole eight one at a time; the output rows must not be
    among the input rows."""
    _check(out, x, w)
    no_start = isinstance(start, (types.NoneType, types.Omitted))
    if not no_start and start != types.float64:
        raise TypingError(f"rows_combination: start is a float64 or None, got {start}")
    sig = types.void(out, types.intp, start, x, types.intp, types.intp, w, types.intp,
                     types.intp, types.intp, types.intp)

    def codegen(context, builder, signature, args):
        out_, out_off, start_, x_, x_off, x_stride, w_, w_off, w_stride, count, n = args
        po = _row_pointer(context, builder, signature.args[0], out_, out_off)
        px = _row_pointer(context, builder, signature.args[3], x_, x_off)
        pw = _row_pointer(context, builder, signature.args[6], w_, w_off)
        dbl = ir.DoubleType()
        vec = ir.VectorType(dbl, LANES)
        one = ir.Constant(count.type, 1)

        def splat(value):
            return builder.shuffle_vector(
                builder.insert_element(ir.Constant(vec, ir.Undefined), value,
                                       ir.Constant(ir.IntType(32), 0)),
                ir.Constant(vec, ir.Undefined), ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))

        def rows(index, kind, width):
            """The combination at rows ``index`` (``width`` of them)."""
            acc = cgutils.alloca_once(builder, kind)

            def term(k):
                weight = builder.load(builder.gep(pw, [builder.mul(k, w_stride)]))
                weight = splat(weight) if width > 1 else weight
                value = _load(builder, px, builder.add(builder.mul(k, x_stride), index), kind)
                return builder.fmul(weight, value)

            if no_start:
                builder.store(term(ir.Constant(count.type, 0)), acc)
                first = one
            else:
                builder.store(splat(start_) if width > 1 else start_, acc)
                first = ir.Constant(count.type, 0)
            with cgutils.for_range_slice(builder, first, count, one) as (k, _):
                builder.store(builder.fadd(builder.load(acc), term(k)), acc)
            address = builder.gep(po, [index])
            if width > 1:
                address = builder.bitcast(address, kind.as_pointer())
            builder.store(builder.load(acc), address, align=8)

        lanes = ir.Constant(n.type, LANES)
        n_blocks = builder.sdiv(n, lanes)
        with cgutils.for_range(builder, n_blocks) as loop:
            rows(builder.mul(loop.index, lanes), vec, LANES)
        with cgutils.for_range_slice(builder, builder.mul(n_blocks, lanes), n,
                                     ir.Constant(n.type, 1)) as (i, _):
            rows(i, dbl, 1)
        return context.get_dummy_value()

    return sig, codegen
