"""The globals a pickle may name and still be ``clean``: everything else is a finding.

An allowlist, not a denylist: a pickle can only reach code through the globals it names
(``GLOBAL``, ``STACK_GLOBAL``, ``INST``), so a name no one vetted is reported even when no
known exploit uses it. The names here only rebuild data (arrays, tensors, containers) or
construct the common libraries' model classes, whose constructors and ``__setstate__`` store
what they are given and run nothing else. Functions that read files, load nested pickles or
import by name (``numpy.load``, ``torch.load``, ``joblib.load``,
``torch.storage._load_from_bytes``…) are deliberately absent.
"""

from __future__ import annotations

import re

__all__ = ["DANGEROUS_MODULES", "is_allowed", "severity"]

# Exact (module, name) pairs.
_EXACT: frozenset[tuple[str, str]] = frozenset(
    [
        *(
            (module, name)
            for module in ("builtins", "__builtin__")
            for name in (
                "object",
                "dict",
                "list",
                "tuple",
                "set",
                "frozenset",
                "int",
                "float",
                "complex",
                "str",
                "bytes",
                "bytearray",
                "bool",
                "slice",
                "range",
                "type(None)",
            )
        ),
        ("copyreg", "_reconstructor"),
        ("copy_reg", "_reconstructor"),
        ("_codecs", "encode"),  # protocol 2 pickles bytes as _codecs.encode(text, 'latin1')
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("collections", "Counter"),
        ("collections", "deque"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"),
        ("fractions", "Fraction"),
        *(
            (module, name)
            for module in ("numpy.core.multiarray", "numpy._core.multiarray")
            for name in ("_reconstruct", "scalar")
        ),
        *((module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.ma.core", "_mareconstruct"),
        ("numpy.ma.core", "MaskedArray"),
        ("numpy.random._pickle", "__randomstate_ctor"),
        ("numpy.random._pickle", "__generator_ctor"),
        ("numpy.random._pickle", "__bit_generator_ctor"),
        ("numpy.random._mt19937", "MT19937"),
        ("numpy.random._pcg64", "PCG64"),
        ("numpy.random._pcg64", "PCG64DXSM"),
        ("numpy.random._philox", "Philox"),
        ("numpy.random._sfc64", "SFC64"),
        ("numpy.random.bit_generator", "SeedSequence"),
        # Cython's generated unpickler: checks the state's checksum, then sets fields.
        ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"),
        ("numpy.random.mtrand", "RandomState"),
        ("numpy.random._generator", "Generator"),
        ("joblib.numpy_pickle", "NumpyArrayWrapper"),
        # TorchScript archives: list rebuilders of the TorchScript unpickler.
        *(
            ("torch.jit._pickle", name)
            for name in (
                "build_intlist",
                "build_tensorlist",
                "build_doublelist",
                "build_boollist",
                "build_tensor_from_id",
                "restore_type_tag",
            )
        ),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch", "Tensor"),
        ("torch._tensor", "_rebuild_from_type_v2"),
        ("torch.nn.parameter", "Parameter"),
        ("torch._utils", "_rebuild_tensor"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_tensor_v3"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch._utils", "_rebuild_sparse_tensor"),
        ("torch._utils", "_rebuild_qtensor"),
        ("torch.serialization", "_get_layout"),
    ]
)

# numpy scalar types and dtype classes (``numpy.float64``, ``numpy.dtypes.Float64DType``).
_NUMPY_SCALAR = re.compile(
    r"(bool_?|u?int(8|16|32|64)?|float(16|32|64|128)?|complex(64|128|256)?|str_|bytes_"
    r"|longlong|ulonglong|intc|uintc|half|single|double|longdouble|datetime64|timedelta64)"
)
_TORCH_TYPE = re.compile(
    r"(float|double|half|bfloat16|u?int(8|16|32|64)|long|short|bool|complex(32|64|128)|cfloat"
    r"|cdouble|q(u?int(8|32)|uint4x2|uint2x4)|strided|sparse_coo|channels_last"
    r"|contiguous_format|preserve_format)"
)
# Modules whose classes (CamelCase names) are model or layer definitions.
_CLASS_MODULES = re.compile(
    r"(sklearn|xgboost|lightgbm|torch\.nn\.modules|torch\.ao\.nn|scipy\.sparse)(\.[\w.]+)?"
)
# Parts of those packages that fetch, read or run things: never allowed.
_CLASS_EXCLUDED = re.compile(r"sklearn\.(datasets|externals|utils\._testing|utils\.parallel)")
_STORAGE = re.compile(r"[A-Z]\w*Storage")

# Known exploit primitives: a finding naming one is ``critical``, any other unknown ``high``.
DANGEROUS_MODULES = frozenset(
    [
        "os",
        "posix",
        "nt",
        "subprocess",
        "sys",
        "runpy",
        "socket",
        "shutil",
        "pty",
        "pickle",
        "_pickle",
        "dill",
        "cloudpickle",
        "marshal",
        "types",
        "code",
        "codeop",
        "importlib",
        "ctypes",
        "asyncio",
        "multiprocessing",
        "threading",
        "webbrowser",
        "http",
        "urllib",
        "requests",
        "bdb",
        "pdb",
        "timeit",
        "platform",
        "signal",
        "builtins",
        "__builtin__",
        "operator",
        "functools",
        "inspect",
        "pydoc",
        "tempfile",
        "glob",
        "pathlib",
        "io",
        "zipimport",
    ]
)


def is_allowed(module: str, name: str) -> bool:
    """Whether the global ``module.name`` may appear in a ``clean`` pickle."""
    if (module, name) in _EXACT:
        return True
    if module == "__torch__" or module.startswith("__torch__."):
        # TorchScript classes: compiled from the archive's own TorchScript code, which cannot
        # reach Python; ``pickle`` itself cannot import a module of that name.
        return "." not in name
    if name.startswith("__") or "." in name:
        return False  # dunder helpers and attribute paths (``os.system`` via ``getattr``)
    if _CLASS_MODULES.fullmatch(module) and not _CLASS_EXCLUDED.match(module):
        return name.lstrip("_")[:1].isupper()  # classes, private ones included
    if name.startswith("_"):
        return False
    if module in {"numpy", "numpy.dtypes"}:
        return bool(_NUMPY_SCALAR.fullmatch(name)) or name.endswith("DType")
    if module == "torch":
        return bool(_TORCH_TYPE.fullmatch(name) or _STORAGE.fullmatch(name))
    return False


def severity(module: str) -> str:
    """``critical`` for a module known to run code, ``high`` for any other unvetted one."""
    return "critical" if module.split(".", 1)[0] in DANGEROUS_MODULES else "high"
