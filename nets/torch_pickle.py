"""Read a PyTorch state dict saved in the legacy (non-zip) `torch.save` format into numpy arrays, without torch.

The legacy format is a sequence of pickles: a magic number, the protocol version, system info, the state dict
(tensors refer to storages by key through persistent ids), the list of storage keys, then for each key an int64
element count and the storage's raw little-endian bytes. Unpickling is restricted to the handful of globals such a
file needs (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, the storage types): anything else — code
a malicious file could name — is refused.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16, "LongStorage": np.int64,
    "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _Storage:
    """A storage referred to by the state dict; filled with data once the raw bytes are read."""

    def __init__(self, dtype: type) -> None:
        self.dtype = np.dtype(dtype)
        self.data: np.ndarray | None = None


class _TensorRef:
    """A tensor waiting for its storage's data: offset, shape and strides in elements."""

    def __init__(self, storage: _Storage, offset: int, shape: tuple, strides: tuple) -> None:
        self.storage, self.offset, self.shape, self.strides = storage, offset, tuple(shape), tuple(strides)

    def array(self) -> np.ndarray:
        data = self.storage.data
        itemsize = data.itemsize
        view = np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.shape,
                                               strides=tuple(s * itemsize for s in self.strides))
        return np.array(view)  # a copy: independent of the storage buffer


def _rebuild_tensor(storage: _Storage, offset: int, shape: tuple, strides: tuple, *unused: Any) -> _TensorRef:
    return _TensorRef(storage, offset, shape, strides)


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, handle: BinaryIO, storages: dict[str, _Storage]) -> None:
        super().__init__(handle)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, saved_id: tuple) -> _Storage:
        kind, storage_type, key, *_ = saved_id
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {saved_id!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(STORAGE_DTYPES[storage_type.name])
        return self.storages[key]


def read_legacy_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format `.pth` state dict, by name, as numpy arrays.

    Raises:
        ValueError naming the file when it is not a legacy PyTorch file or holds anything but tensors.
    """
    path = Path(path)
    storages: dict[str, _Storage] = {}
    try:
        with path.open("rb") as handle:
            if pickle.load(handle) != LEGACY_MAGIC:
                raise ValueError("not a legacy PyTorch file (wrong magic number)")
            pickle.load(handle)  # protocol version
            pickle.load(handle)  # system info: endianness and type sizes
            state = _RestrictedUnpickler(handle, storages).load()
            keys = pickle.load(handle)
            for key in keys:
                count = int(np.frombuffer(handle.read(8), "<i8")[0])
                storage = storages[key]
                raw = handle.read(count * storage.dtype.itemsize)
                storage.data = np.frombuffer(raw, storage.dtype.newbyteorder("<"))
    except (pickle.UnpicklingError, EOFError, KeyError, IndexError, ValueError, TypeError) as error:
        raise ValueError(f"{path}: not a readable PyTorch state dict ({error})") from None
    if not isinstance(state, dict) or not all(isinstance(v, _TensorRef) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return {name: ref.array() for name, ref in state.items()}
