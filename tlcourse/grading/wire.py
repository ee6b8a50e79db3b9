"""Plain data across the process boundary: JSON for the structure, safetensors for tensors.

The batch grader never unpickles anything a submission produced. Inside the submission's kernel,
:func:`harvest` calls the learner's function on the grader's cases, turns each result into plain
data with the question's observer and writes it with :func:`dump`; the grader reads it back with
:func:`load`, which can only ever produce ``dict``/``list``/``str``/``int``/``float``/``bool``/
``None`` and plain ``torch.Tensor`` objects, so no custom ``__eq__`` can reach the comparison.

Introduced in exercises/00_warmup.ipynb.
"""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

MAX_JSON_BYTES = 20_000_000
MAX_TENSOR_BYTES = 200_000_000
_TENSOR_KEY = "__tensor__"
_BAD_KEY = "__unsupported__"


def encode(value: Any, tensors: dict[str, torch.Tensor], depth: int = 0) -> Any:
    """Plain data -> JSON-able structure; tensors are moved into ``tensors`` by key.

    Anything that is not plain data (by exact type) becomes ``{"__unsupported__": type name}``.
    """
    kind = type(value)
    if depth > 20:
        return {_BAD_KEY: "nesting too deep"}
    if kind in (bool, int, str) or value is None:
        return value
    if kind is float:
        return value if value == value and abs(value) != float("inf") else {_BAD_KEY: repr(value)}
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        plain = value.detach().cpu().as_subclass(torch.Tensor).clone().contiguous()
        tensors[key] = plain
        return {_TENSOR_KEY: key}
    if kind in (list, tuple):
        return [encode(v, tensors, depth + 1) for v in value]
    if kind is dict and all(type(k) is str for k in value):
        return {k: encode(v, tensors, depth + 1) for k, v in value.items()}
    return {_BAD_KEY: kind.__name__}


def decode(data: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode`; unsupported values decode to an ``Unsupported`` marker."""
    if isinstance(data, list):
        return [decode(v, tensors) for v in data]
    if isinstance(data, dict):
        if set(data) == {_TENSOR_KEY}:
            return tensors.get(str(data[_TENSOR_KEY]), Unsupported("missing tensor"))
        if set(data) == {_BAD_KEY}:
            return Unsupported(str(data[_BAD_KEY])[:80])
        return {str(k): decode(v, tensors) for k, v in data.items()}
    return data


class Unsupported:
    """Stands for a value that was not plain data (compares unequal to everything)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def dump(payload: Any, stem: Path) -> None:
    """Write ``payload`` (plain data) to ``<stem>.json`` + ``<stem>.safetensors``, atomically."""
    tensors: dict[str, torch.Tensor] = {}
    structure = encode(payload, tensors)
    json_path, tensor_path = _paths(stem)
    tmp_json, tmp_tensors = _paths(Path(f"{stem}.tmp"))
    save_file(tensors, str(tmp_tensors))
    tmp_json.write_text(json.dumps(structure))
    os.replace(tmp_tensors, tensor_path)
    os.replace(tmp_json, json_path)


def load(stem: Path) -> Any:
    """Read what :func:`dump` wrote, refusing oversized files; no pickle involved."""
    json_path, tensor_path = _paths(stem)
    if json_path.stat().st_size > MAX_JSON_BYTES or tensor_path.stat().st_size > MAX_TENSOR_BYTES:
        raise ValueError("result file too large")
    structure = json.loads(json_path.read_text(), parse_constant=_reject_constant)
    return decode(structure, load_file(str(tensor_path)))


def _paths(stem: Path) -> tuple[Path, Path]:
    """``<stem>.json`` and ``<stem>.safetensors`` (stems contain dots, e.g. ``result_00.1``)."""
    return Path(f"{stem}.json"), Path(f"{stem}.safetensors")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in result file")


def harvest(io_dir: str, qid: str, name: str, namespace: dict, observer: str) -> None:
    """Kernel side: run ``namespace[name]`` on the grader's cases for ``qid``; dump what it gave.

    ``observer`` is ``"module:qualname"`` of the question's observer. Writes ``io_dir/result_<qid>`` = ``{"outcomes": [{"ok", "value" | "error"}...],
    "origin": file of the function's code}``.
    """
    import importlib

    module, _, qualname = observer.partition(":")
    observe = importlib.import_module(module)
    for part in qualname.split("."):
        observe = getattr(observe, part)
    function = namespace.get(name)
    cases = torch.load(Path(io_dir) / f"cases_{qid}.pt", weights_only=False)
    outcomes = [_call(observe, function, name, args) for args in cases]
    origin = str(getattr(getattr(function, "__code__", None), "co_filename", ""))
    dump({"outcomes": outcomes, "origin": origin}, Path(io_dir) / f"result_{qid}")


def _call(observe: Any, function: Any, name: str, args: tuple) -> dict[str, Any]:
    if not callable(function):
        return {"ok": False, "error": f"NameError: {name} is not defined as a function"}
    try:
        result = function(*args)
        return {"ok": True, "value": observe(result, args)}
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - the learner's code may raise anything
        line = traceback.format_exception_only(type(err), err)[-1].strip()
        return {"ok": False, "error": line[:300]}
