"""Passwords never reach a log line, a repr or an error."""

from __future__ import annotations

import pytest

from storage_core.redact import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@host:6379/0", "redis://:***@host:6379/0"),
        ("redis://agent:s3cret@host:6379/0", "redis://agent:***@host:6379/0"),
        ("rediss://agent:p%40ss@host/1?ssl_cert_reqs=required", "rediss://agent:***@host/1?ssl_cert_reqs=required"),
        ("redis://agent@host:6379", "redis://agent:***@host:6379"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("local:///var/lib/state.db", "local:///var/lib/state.db"),
        ("redis://[::1", "redis://[::1"),
        ("redis://:Zm9v/YmFy+cXV4@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://agent:a?b#c/d@h:1/0?db=1", "redis://agent:***@h:1/0?db=1"),
        ("local:///srv/a@b/state.db", "local:///srv/a@b/state.db"),
        ("not a url", "not a url"),
    ],
)
def test_passwords_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://h/0?password=s3cret", "redis://h/0?password=***"),
        ("rediss://h/0?db=1&ssl_password=s3cret&protocol=3", "rediss://h/0?db=1&ssl_password=***&protocol=3"),
        ("redis://u:s3cret@h/0?Password=s3cret#frag", "redis://u:***@h/0?Password=***#frag"),
        ("memo://h?token=s3cret&api_key=s3cret", "memo://h?token=***&api_key=***"),
        ("redis://h/0?db=2", "redis://h/0?db=2"),
    ],
)
def test_passwords_in_the_query_are_masked(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_empty_authority_keeps_its_slashes() -> None:
    assert redact_url("unix:///run/redis.sock?password=s3cret&db=1") == "unix:///run/redis.sock?password=***&db=1"
