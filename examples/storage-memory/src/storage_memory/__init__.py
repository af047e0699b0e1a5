"""storage-memory: an in-process backend for storage-core, and the tutorial's example plugin."""

from storage_memory.backend import MemoryConfig, MemoryStorage

__all__ = ["MemoryConfig", "MemoryStorage"]
