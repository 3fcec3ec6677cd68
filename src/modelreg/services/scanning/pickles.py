"""Reading a pickle without running it: which globals it names and what it calls them with.

The stream is disassembled by the standard library's ``pickletools.genops`` (it decodes
opcodes, never objects) and replayed on a symbolic stack that holds constants, globals and
placeholders, so a ``STACK_GLOBAL`` whose module and name come from the memo (an obfuscated
``os.system``) is still read, and one whose operands are computed is itself a finding.
joblib writes raw array bytes between opcodes; the replay knows each ``NumpyArrayWrapper``'s
shape and dtype, so it skips exactly those bytes and reads on (a payload after the first
array is not missed).
"""

from __future__ import annotations

import math
import pickletools
import re
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from modelreg.services.scanning.allowlist import is_allowed, severity

__all__ = ["Finding", "PickleReport", "scan_pickle_stream"]

MAX_FINDINGS = 50


@dataclass(frozen=True, slots=True)
class Finding:
    """One reason a file is not clean, and a ``detail`` a reviewer can act on.

    ``kind`` is import, dynamic_import, extension, lambda, custom_object or unreadable.
    """

    kind: str
    detail: str
    severity: str = "high"

    def to_dict(self) -> dict[str, str]:
        """The finding's JSON shape."""
        return {"kind": self.kind, "detail": self.detail, "severity": self.severity}


@dataclass(slots=True)
class PickleReport:
    """What one or more consecutive pickles in a stream hold."""

    globals: set[tuple[str, str]] = field(default_factory=set)
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None
    pickles: int = 0

    def add(self, finding: Finding) -> None:
        if len(self.findings) < MAX_FINDINGS and finding not in self.findings:
            self.findings.append(finding)


class _Mark:
    pass


_MARK = _Mark()


@dataclass(eq=False, slots=True)
class _Global:
    module: str
    name: str


@dataclass(eq=False, slots=True)
class _Obj:
    """An object a call or ``NEWOBJ`` made; ``state`` is what ``BUILD`` gave it."""

    cls: Any
    args: Any = None
    state: Any = None


_UNKNOWN = object()
_MEMO_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
# Opcodes that push their argument and nothing else: strings, numbers, bytes, persistent ids.
_CONSTANTS = frozenset(
    op.name
    for op in pickletools.opcodes
    if op.arg is not None
    and not op.stack_before
    and len(op.stack_after) == 1
    and op.name not in _MEMO_GET | {"GLOBAL", "EXT1", "EXT2", "EXT4"}
)
_KEYS = (str, int, float, bytes)
_DTYPE_SIZE = re.compile(r"[<>|=]?([a-zA-Z])(\d*)")
_CHAR_SIZES = {
    "b": 1,
    "B": 1,
    "?": 1,
    "h": 2,
    "H": 2,
    "i": 4,
    "I": 4,
    "l": 8,
    "L": 8,
    "q": 8,
    "Q": 8,
    "e": 2,
    "f": 4,
    "d": 8,
    "g": 16,
    "F": 8,
    "D": 16,
    "G": 32,
}


class _Replay:
    """The symbolic pickle machine for one stream."""

    def __init__(self, report: PickleReport) -> None:
        self.report = report
        self.stack: list[Any] = []
        self.memo: dict[int, Any] = {}

    def pop_mark(self) -> list[Any]:
        items: list[Any] = []
        while self.stack:
            item = self.stack.pop()
            if item is _MARK:
                break
            items.append(item)
        items.reverse()
        return items

    def pop(self) -> Any:
        return self.stack.pop() if self.stack else _UNKNOWN

    def name_global(self, module: Any, name: Any) -> Any:
        if not isinstance(module, str) or not isinstance(name, str):
            self.report.add(
                Finding(
                    "dynamic_import",
                    "STACK_GLOBAL on a computed module or name (obfuscation)",
                    "critical",
                )
            )
            return _UNKNOWN
        self.report.globals.add((module, name))
        if not is_allowed(module, name):
            self.report.add(Finding("import", f"{module}.{name}", severity(module)))
        return _Global(module, name)

    def step(self, op: pickletools.OpcodeInfo, arg: Any) -> int:
        """Apply one opcode; the number of raw bytes to skip after it (joblib arrays)."""
        name = op.name
        # The frequent opcodes first: constants and the memo.
        if name in _CONSTANTS:
            self.stack.append(arg)
            return 0
        if name == "MEMOIZE":
            self.memo[len(self.memo)] = self.stack[-1] if self.stack else _UNKNOWN
            return 0
        if name in _MEMO_GET:
            self.stack.append(self.memo.get(arg, _UNKNOWN))
            return 0
        if name in ("PROTO", "FRAME", "STOP"):
            return 0
        if name == "MARK":
            self.stack.append(_MARK)
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            found = self.name_global(module, attr)
            if name == "INST":
                self.stack.append(_Obj(found, tuple(self.pop_mark())))
            else:
                self.stack.append(found)
        elif name == "STACK_GLOBAL":
            attr, module = self.pop(), self.pop()
            self.stack.append(self.name_global(module, attr))
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.report.add(
                Finding("extension", f"copyreg extension code {arg} (an unvetted global)")
            )
            self.stack.append(_UNKNOWN)
        elif name in _MEMO_PUT:
            self.memo[int(arg)] = self.stack[-1] if self.stack else _UNKNOWN
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.stack[-1] if self.stack else _UNKNOWN
        elif name in _MEMO_GET:
            self.stack.append(self.memo.get(int(arg), _UNKNOWN))
        else:
            return self.step_data(op, arg)
        return 0

    def step_data(self, op: pickletools.OpcodeInfo, arg: Any) -> int:
        name = op.name
        if name == "REDUCE":
            args, func = self.pop(), self.pop()
            self.stack.append(_Obj(func, args))
        elif name in ("NEWOBJ", "NEWOBJ_EX"):
            if name == "NEWOBJ_EX":
                self.pop()
            args, cls = self.pop(), self.pop()
            self.stack.append(_Obj(cls, args))
        elif name == "OBJ":
            items = self.pop_mark()
            self.stack.append(_Obj(items[0] if items else _UNKNOWN, tuple(items[1:])))
        elif name == "BUILD":
            state = self.pop()
            target = self.stack[-1] if self.stack else _UNKNOWN
            if isinstance(target, _Obj):
                target.state = state
                return _joblib_array_bytes(target)
        elif name in ("TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_TUPLE"):
            count = {"TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3, "EMPTY_TUPLE": 0}.get(name)
            items = self.pop_mark() if count is None else [self.pop() for _ in range(count)][::-1]
            self.stack.append(tuple(items))
        elif name in ("EMPTY_DICT", "DICT"):
            items = self.pop_mark() if name == "DICT" else []
            self.stack.append(_as_dict(items))
        elif name in ("SETITEM", "SETITEMS"):
            items = [self.pop(), self.pop()][::-1] if name == "SETITEM" else self.pop_mark()
            target = self.stack[-1] if self.stack else None
            if isinstance(target, dict):
                target.update(_as_dict(items))
        elif name in ("NONE", "NEWTRUE", "NEWFALSE"):
            self.stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[name])
        else:
            self._generic(op)
        return 0

    def _generic(self, op: pickletools.OpcodeInfo) -> None:
        """Any other opcode by its documented stack effect (lists, sets, POP, DUP…)."""
        if op.name == "DUP":
            self.stack.append(self.stack[-1] if self.stack else _UNKNOWN)
            return
        before = list(op.stack_before)
        if pickletools.markobject in before:
            self.pop_mark()
            before = before[: before.index(pickletools.markobject)]
        keep_container = op.name in ("APPEND", "APPENDS", "ADDITEMS")
        for _ in before:
            self.pop()
        if keep_container:
            return  # the list/set stays on the stack (it was below the mark or the item)
        for _ in op.stack_after:
            self.stack.append(_UNKNOWN)


def _as_dict(items: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in zip(items[0::2], items[1::2], strict=False):
        if isinstance(key, _KEYS):
            out[key] = value
    return out


# What follows a joblib wrapper's BUILD: raw bytes (a count, plus _PADDED when joblib aligned
# them), a nested pickle, or something unreadable.
_UNSIZED = -1
_NESTED = -2
_PADDED = 1 << 62


def _joblib_array_bytes(obj: _Obj) -> int:
    """What joblib wrote after this ``BUILD`` (0: nothing, it is not a joblib wrapper)."""
    cls = obj.cls
    if not (
        isinstance(cls, _Global)
        and cls.module == "joblib.numpy_pickle"
        and cls.name == "NumpyArrayWrapper"
        and isinstance(obj.state, dict)
    ):
        return 0
    state = obj.state
    dtype = state.get("dtype")
    shape = state.get("shape")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        return -1
    itemsize = _itemsize(dtype)
    if itemsize is None:
        return _UNSIZED
    if itemsize == 0:
        return _NESTED  # an object array: joblib wrote a whole pickle of it here
    padded = bool(state.get("numpy_array_alignment_bytes"))
    return _PADDED * padded + math.prod(shape) * itemsize


def _itemsize(dtype: Any) -> int | None:
    """Bytes per item of a pickled ``numpy.dtype('<f8', …)``; 0 for objects; None: unknown."""
    if not isinstance(dtype, _Obj) or not isinstance(dtype.args, tuple) or not dtype.args:
        return None
    code = dtype.args[0]
    if not isinstance(code, str):
        return None
    if code == "O8" or code.startswith("O"):
        return 0
    match = _DTYPE_SIZE.fullmatch(code)
    if match is None:
        return None
    char, digits = match.groups()
    if digits:
        size = int(digits)
        return size * 4 if char == "U" else size
    return _CHAR_SIZES.get(char)


def scan_pickle_stream(stream: BinaryIO, *, many: bool = False) -> PickleReport:
    """Disassemble the pickle at ``stream``'s position (and, with ``many``, those following).

    ``error`` is set when the first pickle cannot be read to its end: it is not a pickle, or
    it is crafted against disassemblers. Globals found before the error are reported anyway.
    """
    report = PickleReport()
    while True:
        start = stream.tell()
        if report.pickles and not many:
            break
        if report.pickles:
            head = stream.read(1)
            stream.seek(start)
            if head != b"\x80":
                break  # what follows is data (a legacy torch file's storages), not a pickle
        replay = _Replay(report)
        try:
            finished = _run(replay, stream)
        except Exception as exc:
            if not report.pickles:
                report.error = f"not a readable pickle: {exc}"[:300]
            break
        if not finished:
            if not report.pickles:
                report.error = "a joblib array whose size cannot be read"
            break
        report.pickles += 1
    return report


def _run(replay: _Replay, stream: BinaryIO) -> bool:
    """Replay one pickle to its STOP; ``False`` when a joblib array cannot be skipped."""
    while True:
        skip = 0
        stopped = False
        for op, arg, _pos in pickletools.genops(stream):
            skip = replay.step(op, arg)
            if op.name == "STOP":
                stopped = True
                break
            if skip:
                break
        if stopped:
            return True
        if skip == _UNSIZED:
            return False
        if skip == _NESTED:
            if not _run(_Replay(replay.report), stream):
                return False
            continue
        if skip == 0:
            raise ValueError("the pickle ends without STOP")
        if skip >= _PADDED:
            skip -= _PADDED
            # joblib aligns arrays: one byte says how many padding bytes follow it.
            pad = stream.read(1)
            if not pad or not 1 <= pad[0] <= 16:
                raise ValueError("joblib array padding is malformed")
            stream.seek(pad[0], 1)
        stream.seek(skip, 1)
