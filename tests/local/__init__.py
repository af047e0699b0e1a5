"""Tests of the local backend (a package, so module names never clash with tests/redis)."""
