"""fast_init: the same frozen dataclass, built with fewer instructions."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from typing import Any

import pytest

from tokenware.core import handshake, ops
from tokenware.core.frozen import fast_init

FAST = [
    getattr(ops, name)
    for name in ops.__all__
    if isinstance(getattr(ops, name), type) and dataclasses.is_dataclass(getattr(ops, name))
] + [handshake.Accepted, handshake.HandshakeReply]


def twin(cls: type) -> type:
    """The same dataclass, with the __init__ dataclasses writes."""
    spec = [
        (f.name, f.type, dataclasses.field(default=f.default, repr=f.repr))
        for f in dataclasses.fields(cls)
    ]
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)


def sample_args(cls: type) -> list[Any]:
    return [f"<{f.name}>" for f in dataclasses.fields(cls)]


def test_every_operation_is_fast() -> None:
    assert ops.Put in FAST and ops.Batch in FAST and len(FAST) >= 10
    for cls in FAST:
        assert vars(cls)["__init__"].__code__.co_freevars, cls  # ours: a closure


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_same_signature_as_the_generated_init(cls: type) -> None:
    ours, theirs = inspect.signature(cls), inspect.signature(twin(cls))
    assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
        (p.name, p.kind, p.default) for p in theirs.parameters.values()
    ]
    assert cls.__init__.__qualname__ == f"{cls.__qualname__}.__init__"


@pytest.mark.parametrize("cls", FAST, ids=lambda c: c.__name__)
def test_same_object_as_the_generated_init(cls: type) -> None:
    args = sample_args(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    reference = twin(cls)(*args)
    for made in (cls(*args), cls(**dict(zip(names, args, strict=True)))):
        assert dataclasses.astuple(made) == dataclasses.astuple(reference)
        assert repr(made).split("(", 1)[1] == repr(reference).split("(", 1)[1]
        assert made == cls(*args) and hash(made) == hash(cls(*args))
        assert pickle.loads(pickle.dumps(made)) == made
        assert copy.copy(made) == made and copy.deepcopy(made) == made
        assert dataclasses.replace(made, **{names[0]: "other"}) != made
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(made, names[0], "changed")
        with pytest.raises(dataclasses.FrozenInstanceError):
            delattr(made, names[0])
    # Defaults are applied; missing or unknown arguments are refused alike.
    required = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    assert dataclasses.astuple(cls(*args[: len(required)])) == dataclasses.astuple(
        twin(cls)(*args[: len(required)])
    )
    for bad_args, bad_kwargs in ((args[: len(required) - 1], {}), (args, {"nope": 1})):
        if len(bad_args) < len(required) or bad_kwargs:
            with pytest.raises(TypeError):
                cls(*bad_args, **bad_kwargs)
            with pytest.raises(TypeError):
                twin(cls)(*bad_args, **bad_kwargs)


def test_refuses_what_it_cannot_do() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    @dataclasses.dataclass(slots=True)
    class NotFrozen:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class PostInit:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclasses.dataclass(frozen=True, slots=True)
    class Factory:
        a: list[int] = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
    class KeywordOnly:
        a: int

    @dataclasses.dataclass(frozen=True, slots=True)
    class NoInit:
        a: int = dataclasses.field(init=False, default=1)

    for cls in (NoSlots, NotFrozen, PostInit, Factory, KeywordOnly, NoInit, int):
        with pytest.raises(TypeError):
            fast_init(cls)


def test_a_class_without_fields() -> None:
    @fast_init
    @dataclasses.dataclass(frozen=True, slots=True)
    class Empty:
        pass

    assert Empty() == Empty()
    with pytest.raises(TypeError):
        Empty(1)  # type: ignore[call-arg]
