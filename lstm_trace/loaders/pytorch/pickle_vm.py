"""A pickle reader that executes nothing: a small stack machine over pickle opcodes.

``torch.save`` writes Python pickles, and a pickle is a program: its ``GLOBAL`` opcode
imports any callable and ``REDUCE`` calls it (``os.system``, ``builtins.eval``...). This
module interprets the opcodes of protocols 0 to 5 itself (it never calls
:mod:`pickle`'s unpickler) and resolves globals against a short allow-list of pure
reconstructors supplied by the caller. Every other global becomes a :class:`Global`
record and every call of it an :class:`Opaque` object that records the call's module,
name, arguments and later ``BUILD`` state: data to inspect, never imported, never
called. Persistent ids (torch's storages) go to a caller-supplied function.

Limits keep a hostile file from exhausting memory: a maximum pickle size, memo size,
stack depth and integer width; anything malformed raises :class:`PickleError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Longest ``LONG`` / ``LONG4`` integer accepted, in bytes (torch never needs more than 8).
MAX_LONG_BYTES = 64
#: Most memo entries and stack items a pickle may create.
MAX_MEMO = 10_000_000
MAX_STACK = 10_000_000
#: Most items the allowed container constructors may copy in one pickle (``tuple(big_list)``
#: called a million times on the same memoised list would otherwise multiply memory).
MAX_COPIED_ITEMS = 50_000_000


class PickleError(ValueError):
    """A pickle is malformed, truncated, or uses an opcode this reader refuses."""


@dataclass(frozen=True)
class Global:
    """A global the pickle names (``module.name``) that is not on the allow-list: inert."""

    module: str
    name: str

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class Opaque:
    """What an inert global was asked to build: its arguments and ``BUILD`` state, kept as data.

    ``kind`` is ``call`` (``REDUCE``), ``new`` (``NEWOBJ``/``NEWOBJ_EX``/``OBJ``/``INST``).
    ``items`` and ``entries`` collect ``APPEND``/``SETITEM`` sent to it.
    """

    cls: Global
    args: tuple = ()
    kind: str = "call"
    kwargs: dict | None = None
    state: Any = None
    items: list = field(default_factory=list)
    entries: dict = field(default_factory=dict)

    @property
    def qualname(self) -> str:
        return self.cls.qualname

    def __repr__(self) -> str:
        return f"<{self.qualname} (not run)>"


class PickledDict(dict):
    """A ``dict``/``OrderedDict`` from the pickle; ``pickled_state`` holds any ``BUILD`` state
    (``OrderedDict._metadata`` of a state_dict)."""

    pickled_state: Any = None


Reconstructor = Callable[..., Any]


def _ordered_dict(*args: Any) -> PickledDict:
    out = PickledDict()
    if args:
        items = args[0]
        if isinstance(items, Mapping):
            out.update(items)
        else:
            for pair in items:
                key, value = pair
                out[key] = value
    return out


def _codecs_encode(text: str, encoding: str = "utf-8") -> bytes:
    # Protocol 2 pickles bytes as _codecs.encode(str, "latin1"); only text codecs are allowed.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise PickleError(f"_codecs.encode with {type(text).__name__}, {encoding!r} is not allowed")
    return text.encode(encoding)


def _make_set(items: Any = ()) -> set:
    return set(_items(items))


def _make_frozenset(items: Any = ()) -> frozenset:
    return frozenset(_items(items))


def _items(items: Any) -> list:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise PickleError(f"cannot build a set from {type(items).__name__}")
    return list(items)


def _make_list(items: Any = ()) -> list:
    return _items(items)


def _make_tuple(items: Any = ()) -> tuple:
    return tuple(_items(items))


def _make_dict(*args: Any) -> PickledDict:
    return _ordered_dict(*args)


#: Reconstructors every pickle may use: containers only (no code, no I/O).
BASE_ALLOWED: dict[tuple[str, str], Reconstructor] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("builtins", "set"): _make_set,
    ("builtins", "frozenset"): _make_frozenset,
    ("builtins", "list"): _make_list,
    ("builtins", "tuple"): _make_tuple,
    ("builtins", "dict"): _make_dict,
    ("__builtin__", "set"): _make_set,
    ("__builtin__", "frozenset"): _make_frozenset,
    ("__builtin__", "list"): _make_list,
    ("__builtin__", "tuple"): _make_tuple,
    ("__builtin__", "dict"): _make_dict,
    ("_codecs", "encode"): _codecs_encode,
}


class _Mark:
    """The ``MARK`` sentinel on the stack."""


_MARK = _Mark()


def _unicode_arg(raw: bytes) -> str:
    try:
        return raw.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as err:
        raise PickleError(f"invalid UTF-8 in a pickled string ({err.reason})") from None


def _decode_string(raw: bytes, encoding: str) -> str | bytes:
    if encoding == "bytes":
        return raw
    return raw.decode(encoding, "strict")


class PickleMachine:
    """Interprets one pickle. Use :func:`load_pickle`."""

    def __init__(self, data: bytes, allowed: Mapping[tuple[str, str], Reconstructor],
                 persistent_load: Callable[[Any], Any] | None, encoding: str = "utf-8") -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.allowed = {**BASE_ALLOWED, **allowed}
        self.persistent_load = persistent_load
        self.encoding = encoding
        self.stack: list[Any] = []
        self.marks: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.copied = 0

    # ------------------------------------------------------------ reading bytes

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PickleError("pickle is truncated (a length points past its end)")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def readline(self) -> bytes:
        window = 256
        while True:
            chunk = bytes(self.data[self.pos:self.pos + window])
            end = chunk.find(b"\n")
            if end >= 0:
                self.pos += end + 1
                return chunk[:end]
            if self.pos + window >= len(self.data):
                raise PickleError("pickle is truncated (a text argument has no line end)")
            window *= 4

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.read(size))[0]

    # ------------------------------------------------------------ stack helpers

    def push(self, value: Any) -> None:
        if len(self.stack) >= MAX_STACK:
            raise PickleError("pickle stack grows past the limit")
        self.stack.append(value)

    def pop(self) -> Any:
        if not self.stack:
            raise PickleError("pickle pops from an empty stack")
        value = self.stack.pop()
        if value is _MARK:
            raise PickleError("pickle uses a MARK as a value")
        return value

    def top(self) -> Any:
        if not self.stack or self.stack[-1] is _MARK:
            raise PickleError("pickle reads from an empty stack")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise PickleError("pickle closes a MARK it never opened")
        items = self.stack
        self.stack = self.marks.pop()
        return items

    def memo_put(self, index: int, value: Any) -> None:
        if len(self.memo) >= MAX_MEMO and index not in self.memo:
            raise PickleError("pickle memo grows past the limit")
        self.memo[index] = value

    def memo_get(self, index: int) -> Any:
        if index not in self.memo:
            raise PickleError(f"pickle refers to memo entry {index}, which it never stored")
        return self.memo[index]

    # ------------------------------------------------------------ globals and calls

    def find_global(self, module: str, name: str) -> Any:
        fn = self.allowed.get((module, name))
        return fn if fn is not None else Global(module, name)

    def call(self, func: Any, args: Any, kind: str = "call", kwargs: dict | None = None) -> Any:
        if not isinstance(args, tuple):
            raise PickleError(f"pickle calls {func!r} with {type(args).__name__} arguments")
        if isinstance(func, Global):
            return Opaque(func, args, kind, kwargs)
        if isinstance(func, Opaque):
            return Opaque(func.cls, args, kind, kwargs)  # e.g. a placeholder class's method
        if callable(func) and any(func is f for f in self.allowed.values()):
            self.copied += sum(len(a) for a in args if isinstance(
                a, (list, tuple, dict, set, frozenset, str, bytes)))
            if self.copied > MAX_COPIED_ITEMS:
                raise PickleError("pickle rebuilds containers past the limit (a memory bomb?)")
            try:
                return func(*args, **(kwargs or {}))
            except PickleError:
                raise
            except (TypeError, ValueError, KeyError, IndexError, AttributeError) as err:
                raise PickleError(f"pickle calls {getattr(func, '__name__', func)} with "
                                  f"arguments it cannot take ({err})") from None
        raise PickleError(f"pickle calls a {type(func).__name__}, which is not callable here")

    def build(self, obj: Any, state: Any) -> None:
        if isinstance(obj, Opaque):
            obj.state = state
        elif isinstance(obj, PickledDict):
            obj.pickled_state = state
        elif hasattr(obj, "set_pickled_state"):
            obj.set_pickled_state(state)
        # BUILD on anything else (a list, a number) is ignored: nothing to run, nothing to keep.

    # ------------------------------------------------------------ the loop

    def run(self) -> Any:
        dispatch = _DISPATCH
        while True:
            if self.pos >= len(self.data):
                raise PickleError("pickle ends without a STOP opcode")
            code = self.data[self.pos]
            self.pos += 1
            handler = dispatch.get(code)
            if handler is None:
                raise PickleError(f"unsupported or unknown pickle opcode 0x{code:02x} at byte "
                                  f"{self.pos - 1}")
            if handler(self):
                return self.pop()


# Each handler returns True only for STOP.
_DISPATCH: dict[int, Callable[[PickleMachine], bool | None]] = {}


def _op(code: bytes) -> Callable[[Callable[[PickleMachine], bool | None]], Callable]:
    def register(fn: Callable[[PickleMachine], bool | None]) -> Callable:
        _DISPATCH[code[0]] = fn
        return fn
    return register


@_op(b"\x80")
def _proto(m: PickleMachine) -> None:
    version = m.read(1)[0]
    if version > 5:
        raise PickleError(f"pickle protocol {version} is newer than 5")


@_op(b"\x95")
def _frame(m: PickleMachine) -> None:
    m.read(8)  # frame length: frames are only a buffering hint


@_op(b".")
def _stop(m: PickleMachine) -> bool:
    return True


@_op(b"(")
def _mark(m: PickleMachine) -> None:
    m.marks.append(m.stack)
    m.stack = []


@_op(b"0")
def _pop(m: PickleMachine) -> None:
    if m.stack:
        m.stack.pop()
    else:
        m.pop_mark()  # pickletools: POP of an empty stack after a MARK drops the mark


@_op(b"1")
def _pop_mark(m: PickleMachine) -> None:
    m.pop_mark()


@_op(b"2")
def _dup(m: PickleMachine) -> None:
    m.push(m.top())


@_op(b"N")
def _none(m: PickleMachine) -> None:
    m.push(None)


@_op(b"\x88")
def _true(m: PickleMachine) -> None:
    m.push(True)


@_op(b"\x89")
def _false(m: PickleMachine) -> None:
    m.push(False)


def _parse_int_text(text: bytes) -> int | bool:
    if text == b"00":
        return False
    if text == b"01":
        return True
    stripped = text.rstrip(b"L")
    if len(stripped) > 2 * MAX_LONG_BYTES + 2:
        raise PickleError("pickle holds an integer wider than lstm-trace accepts")
    try:
        return int(stripped)
    except ValueError:
        raise PickleError(f"pickle holds a malformed integer {text[:20]!r}") from None


@_op(b"I")
def _int(m: PickleMachine) -> None:
    m.push(_parse_int_text(m.readline()))


@_op(b"L")
def _long(m: PickleMachine) -> None:
    m.push(_parse_int_text(m.readline()))


@_op(b"J")
def _binint(m: PickleMachine) -> None:
    m.push(m.unpack("<i"))


@_op(b"K")
def _binint1(m: PickleMachine) -> None:
    m.push(m.read(1)[0])


@_op(b"M")
def _binint2(m: PickleMachine) -> None:
    m.push(m.unpack("<H"))


def _long_bytes(m: PickleMachine, n: int) -> None:
    if n < 0 or n > MAX_LONG_BYTES:
        raise PickleError(f"pickle holds an integer of {n} bytes (at most {MAX_LONG_BYTES})")
    m.push(int.from_bytes(m.read(n), "little", signed=True))


@_op(b"\x8a")
def _long1(m: PickleMachine) -> None:
    _long_bytes(m, m.read(1)[0])


@_op(b"\x8b")
def _long4(m: PickleMachine) -> None:
    _long_bytes(m, m.unpack("<i"))


@_op(b"F")
def _float(m: PickleMachine) -> None:
    try:
        m.push(float(m.readline()))
    except ValueError:
        raise PickleError("pickle holds a malformed float") from None


@_op(b"G")
def _binfloat(m: PickleMachine) -> None:
    m.push(m.unpack(">d"))


def _string_value(m: PickleMachine, raw: bytes) -> None:
    try:
        m.push(_decode_string(raw, m.encoding))
    except (UnicodeDecodeError, LookupError):
        m.push(raw)


@_op(b"S")
def _string(m: PickleMachine) -> None:
    text = m.readline()
    if len(text) >= 2 and text[0] == text[-1] and text[:1] in (b"'", b'"'):
        text = text[1:-1]
    else:
        raise PickleError("pickle STRING argument is not quoted")
    try:
        raw = text.decode("ascii").encode("latin1").decode("unicode_escape").encode("latin1")
    except (UnicodeDecodeError, UnicodeEncodeError):
        raise PickleError("pickle STRING argument has a bad escape") from None
    _string_value(m, raw)


@_op(b"T")
def _binstring(m: PickleMachine) -> None:
    _string_value(m, m.read(m.unpack("<i")))


@_op(b"U")
def _short_binstring(m: PickleMachine) -> None:
    _string_value(m, m.read(m.read(1)[0]))


@_op(b"V")
def _unicode(m: PickleMachine) -> None:
    try:
        m.push(m.readline().decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise PickleError("pickle UNICODE argument has a bad escape") from None


@_op(b"X")
def _binunicode(m: PickleMachine) -> None:
    m.push(_unicode_arg(m.read(m.unpack("<I"))))


@_op(b"\x8c")
def _short_binunicode(m: PickleMachine) -> None:
    m.push(_unicode_arg(m.read(m.read(1)[0])))


@_op(b"\x8d")
def _binunicode8(m: PickleMachine) -> None:
    m.push(_unicode_arg(m.read(m.unpack("<Q"))))


@_op(b"B")
def _binbytes(m: PickleMachine) -> None:
    m.push(m.read(m.unpack("<I")))


@_op(b"C")
def _short_binbytes(m: PickleMachine) -> None:
    m.push(m.read(m.read(1)[0]))


@_op(b"\x8e")
def _binbytes8(m: PickleMachine) -> None:
    m.push(m.read(m.unpack("<Q")))


@_op(b"\x96")
def _bytearray8(m: PickleMachine) -> None:
    m.push(bytearray(m.read(m.unpack("<Q"))))


@_op(b"]")
def _empty_list(m: PickleMachine) -> None:
    m.push([])


@_op(b"a")
def _append(m: PickleMachine) -> None:
    value = m.pop()
    _extend(m.top(), [value])


@_op(b"e")
def _appends(m: PickleMachine) -> None:
    items = m.pop_mark()
    _extend(m.top(), items)


def _extend(target: Any, items: list) -> None:
    if isinstance(target, list):
        target.extend(items)
    elif isinstance(target, Opaque):
        target.items.extend(items)
    else:
        raise PickleError(f"pickle appends to a {type(target).__name__}")


@_op(b"l")
def _list(m: PickleMachine) -> None:
    m.push(m.pop_mark())


@_op(b")")
def _empty_tuple(m: PickleMachine) -> None:
    m.push(())


@_op(b"t")
def _tuple(m: PickleMachine) -> None:
    m.push(tuple(m.pop_mark()))


@_op(b"\x85")
def _tuple1(m: PickleMachine) -> None:
    m.push((m.pop(),))


@_op(b"\x86")
def _tuple2(m: PickleMachine) -> None:
    b = m.pop()
    a = m.pop()
    m.push((a, b))


@_op(b"\x87")
def _tuple3(m: PickleMachine) -> None:
    c = m.pop()
    b = m.pop()
    a = m.pop()
    m.push((a, b, c))


@_op(b"}")
def _empty_dict(m: PickleMachine) -> None:
    m.push(PickledDict())


@_op(b"d")
def _dict(m: PickleMachine) -> None:
    items = m.pop_mark()
    out = PickledDict()
    _set_items(out, items)
    m.push(out)


@_op(b"s")
def _setitem(m: PickleMachine) -> None:
    value = m.pop()
    key = m.pop()
    _set_items(m.top(), [key, value])


@_op(b"u")
def _setitems(m: PickleMachine) -> None:
    items = m.pop_mark()
    _set_items(m.top(), items)


def _set_items(target: Any, items: list) -> None:
    if len(items) % 2:
        raise PickleError("pickle sets dict items from an odd number of values")
    if isinstance(target, Opaque):
        target = target.entries
    if not isinstance(target, dict):
        raise PickleError(f"pickle sets items of a {type(target).__name__}")
    for k in range(0, len(items), 2):
        try:
            target[items[k]] = items[k + 1]
        except TypeError:
            raise PickleError(f"pickle uses an unhashable {type(items[k]).__name__} as a dict key") \
                from None


@_op(b"\x8f")
def _empty_set(m: PickleMachine) -> None:
    m.push(set())


@_op(b"\x90")
def _additems(m: PickleMachine) -> None:
    items = m.pop_mark()
    target = m.top()
    if not isinstance(target, set):
        raise PickleError(f"pickle adds set items to a {type(target).__name__}")
    try:
        target.update(items)
    except TypeError:
        raise PickleError("pickle adds an unhashable item to a set") from None


@_op(b"\x91")
def _frozenset_op(m: PickleMachine) -> None:
    try:
        m.push(frozenset(m.pop_mark()))
    except TypeError:
        raise PickleError("pickle puts an unhashable item in a frozenset") from None


@_op(b"g")
def _get(m: PickleMachine) -> None:
    text = m.readline()
    if not text.isdigit():
        raise PickleError("pickle GET argument is not a number")
    m.push(m.memo_get(int(text)))


@_op(b"h")
def _binget(m: PickleMachine) -> None:
    m.push(m.memo_get(m.read(1)[0]))


@_op(b"j")
def _long_binget(m: PickleMachine) -> None:
    m.push(m.memo_get(m.unpack("<I")))


@_op(b"p")
def _put(m: PickleMachine) -> None:
    text = m.readline()
    if not text.isdigit():
        raise PickleError("pickle PUT argument is not a number")
    m.memo_put(int(text), m.top())


@_op(b"q")
def _binput(m: PickleMachine) -> None:
    m.memo_put(m.read(1)[0], m.top())


@_op(b"r")
def _long_binput(m: PickleMachine) -> None:
    m.memo_put(m.unpack("<I"), m.top())


@_op(b"\x94")
def _memoize(m: PickleMachine) -> None:
    m.memo_put(len(m.memo), m.top())


def _text_line(m: PickleMachine) -> str:
    try:
        return m.readline().decode("utf-8")
    except UnicodeDecodeError:
        raise PickleError("pickle GLOBAL name is not UTF-8") from None


@_op(b"c")
def _global(m: PickleMachine) -> None:
    module = _text_line(m)
    name = _text_line(m)
    m.push(m.find_global(module, name))


@_op(b"\x93")
def _stack_global(m: PickleMachine) -> None:
    name = m.pop()
    module = m.pop()
    if not isinstance(module, str) or not isinstance(name, str):
        raise PickleError("pickle STACK_GLOBAL names are not strings")
    m.push(m.find_global(module, name))


@_op(b"R")
def _reduce(m: PickleMachine) -> None:
    args = m.pop()
    func = m.pop()
    m.push(m.call(func, args))


@_op(b"\x81")
def _newobj(m: PickleMachine) -> None:
    args = m.pop()
    cls = m.pop()
    m.push(m.call(cls, args, kind="new"))


@_op(b"\x92")
def _newobj_ex(m: PickleMachine) -> None:
    kwargs = m.pop()
    args = m.pop()
    cls = m.pop()
    if not isinstance(kwargs, dict):
        raise PickleError("pickle NEWOBJ_EX keyword arguments are not a dict")
    m.push(m.call(cls, args, kind="new", kwargs=dict(kwargs)))


@_op(b"o")
def _obj(m: PickleMachine) -> None:
    items = m.pop_mark()
    if not items:
        raise PickleError("pickle OBJ has no class")
    m.push(m.call(items[0], tuple(items[1:]), kind="new"))


@_op(b"i")
def _inst(m: PickleMachine) -> None:
    module = _text_line(m)
    name = _text_line(m)
    args = tuple(m.pop_mark())
    m.push(m.call(m.find_global(module, name), args, kind="new"))


@_op(b"b")
def _build(m: PickleMachine) -> None:
    state = m.pop()
    m.build(m.top(), state)


def _persistent(m: PickleMachine, pid: Any) -> None:
    if m.persistent_load is None:
        raise PickleError("pickle refers to external data (a persistent id) this file cannot hold")
    m.push(m.persistent_load(pid))


@_op(b"P")
def _persid(m: PickleMachine) -> None:
    _persistent(m, _text_line(m))


@_op(b"Q")
def _binpersid(m: PickleMachine) -> None:
    _persistent(m, m.pop())


def load_pickle(data: bytes, *, allowed: Mapping[tuple[str, str], Reconstructor] | None = None,
                persistent_load: Callable[[Any], Any] | None = None,
                encoding: str = "utf-8") -> tuple[Any, int]:
    """Interpret one pickle from the start of ``data``; return ``(object, bytes consumed)``.

    ``allowed`` maps ``(module, name)`` to pure functions that may be called (besides the
    containers of :data:`BASE_ALLOWED`); every other global stays an inert :class:`Global`
    and calls of it :class:`Opaque` records. ``encoding`` decodes protocol-0/1 byte strings
    (``"bytes"`` keeps them as bytes). Raises :class:`PickleError`.
    """
    machine = PickleMachine(data, allowed or {}, persistent_load, encoding)
    try:
        value = machine.run()
    except RecursionError:
        raise PickleError("pickle nests too deeply") from None
    return value, machine.pos
