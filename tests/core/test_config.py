"""agent.yaml: safe YAML only, ${VAR} from the environment, every mistake named precisely."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from storage_core import ConfigError, Consistency, load_config
from storage_core.config import Section, StorageConfig


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_no_source_and_no_agent_yaml_gives_the_embedded_default(in_tmp_dir: Path) -> None:
    config = load_config()
    assert config == StorageConfig()
    assert (config.backend, config.consistency, config.namespace) == ("local", Consistency.STRONG, "")
    assert config.options_for("local") == {}


def test_no_source_reads_agent_yaml_in_the_current_directory(in_tmp_dir: Path) -> None:
    write(in_tmp_dir / "agent.yaml", "storage:\n  consistency: eventual\n  namespace: fleet-a\n")
    config = load_config()
    assert config.consistency is Consistency.EVENTUAL
    assert config.namespace == "fleet-a"
    assert config.source == "agent.yaml"


def test_a_full_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path / "agent.yaml",
        """
        agent:                      # the agent's own settings are not ours to judge
          name: worker-7
        storage:
          backend: local
          consistency: strong
          namespace: fleet-a
          local:
            path: ./data/agent-state.db
          redis:
            url: redis://127.0.0.1:6379/0
        """,
    )
    config = load_config(path)
    assert config.backend == "local"
    assert config.options_for("local") == {"path": "./data/agent-state.db"}
    assert config.options_for("redis") == {"url": "redis://127.0.0.1:6379/0"}
    assert config.source == str(path)


def test_environment_variables_are_expanded_after_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_DIR", "/srv/state")
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.setenv("NS", "x [not, yaml]")
    monkeypatch.delenv("UNSET_VAR", raising=False)
    path = write(
        tmp_path / "agent.yaml",
        """
        storage:
          namespace: ${NS}
          local:
            path: ${STATE_DIR}/a.db
            other: ${UNSET_VAR:-fallback}
            empty_uses_default: ${EMPTY:-dflt}
            dollars: cost $$5 and ${STATE_DIR}
        """,
    )
    options = load_config(path).options_for("local")
    assert load_config(path).namespace == "x [not, yaml]"
    assert options == {
        "path": "/srv/state/a.db",
        "other": "fallback",
        "empty_uses_default": "dflt",
        "dollars": "cost $5 and /srv/state",
    }


def test_an_unset_variable_without_default_names_it_and_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    path = write(
        tmp_path / "agent.yaml", "storage:\n  backend: redis\n  redis:\n    url: redis://:${REDIS_PASSWORD}@h:6379/0\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "storage.redis.url" in message
    assert "REDIS_PASSWORD is not set" in message


def test_a_python_tag_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write(
        tmp_path / "agent.yaml",
        f"storage: !!python/object/apply:os.system ['touch {marker}']\n",
    )
    with pytest.raises(ConfigError, match="no Python tags") as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "line 1" in str(info.value)
    assert not marker.exists()


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  backend: local\n  namespace: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML"):
        load_config(path)


def test_a_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)
    assert "not found" in str(info.value)
    assert "-c" not in str(info.value), "only the command line has -c/--config: it adds that hint itself"


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("- a list\n", "", "expected a mapping with a 'storage' section"),
        ("agent: {}\n", "storage", "no 'storage' section"),
        ("storage:\nbackend: redis\n", "storage", "the 'storage' section is empty; indent its fields"),
        ("storage:\n  read_only: maybe\n", "storage.read_only", "expected true or false, got 'maybe'"),
        ("storage: [1, 2]\n", "storage", "expected a mapping, got list"),
        ("storage:\n  backend: 3\n", "storage.backend", "expected a backend name"),
        ("storage:\n  consistency: strongest\n", "storage.consistency", "expected 'strong' or 'eventual'"),
        ("storage:\n  namespace: [a]\n", "storage.namespace", "namespace must be a str, got list"),
        ("storage:\n  namespace: 0\n", "storage.namespace", "namespace must be a str, got int"),
        ("storage:\n  namespace: false\n", "storage.namespace", "namespace must be a str, got bool"),
        ("storage:\n  namespace: " + "n" * 300 + "\n", "storage.namespace", "the limit is 256"),
        ("storage:\n  namespace: fleet:a\n", "storage.namespace", "must not contain ':'"),
        ("storage:\n  consistancy: strong\n", "storage", "unknown field 'consistancy' (did you mean 'consistency'?)"),
        ("storage:\n  locall:\n    path: x\n", "storage", "unknown field 'locall' (did you mean 'local'?)"),
        ("storage:\n  wobble: 1\n", "storage", "unknown field 'wobble'; expected"),
        ("storage:\n  local: /a/path\n", "storage.local", "expected a mapping of local options"),
    ],
)
def test_each_mistake_names_file_field_and_expectation(tmp_path: Path, text: str, field: str, expected: str) -> None:
    path = write(tmp_path / "agent.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.source == str(path)
    assert (info.value.field or "") == field
    assert expected in str(info.value)
    assert str(info.value).startswith(str(path))


def test_the_unknown_field_message_lists_what_is_expected(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  backnd: local\n")
    with pytest.raises(
        ConfigError,
        match=(
            "expected one of: backend, consistency, namespace, change_feed, change_retention, "
            "read_only, observers, local"
        ),
    ):
        load_config(path)


def test_an_empty_backend_section_means_its_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  local:\n")
    assert load_config(path).options_for("local") == {}


def test_a_mapping_can_be_the_whole_document_or_just_the_section() -> None:
    whole = load_config({"storage": {"backend": "local", "namespace": "a"}})
    section = load_config({"backend": "local", "namespace": "a"})
    assert whole.namespace == section.namespace == "a"
    assert whole.source == "<mapping>"
    with pytest.raises(ConfigError, match="<mapping>: storage: unknown field 'bogus'"):
        load_config({"bogus": 1})


def test_a_section_for_a_known_but_uninstalled_backend_is_accepted_when_unused(tmp_path: Path) -> None:
    # An operator may keep a redis section in a file used on a host without storage-redis.
    config = load_config({"backend": "local", "redis": {"url": "redis://h:1/0"}})
    assert config.options_for("redis") == {"url": "redis://h:1/0"}


def test_the_config_error_message_puts_source_and_field_first() -> None:
    error = ConfigError("expected a number", field="storage.local.timeout", source="agent.yaml")
    assert str(error) == "agent.yaml: storage.local.timeout: expected a number"
    assert str(ConfigError("plain")) == "plain"
    assert error.with_source("other.yaml").source == "agent.yaml"


def test_only_the_selected_backends_section_needs_its_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    path = write(
        tmp_path / "agent.yaml",
        "storage:\n  backend: local\n  redis:\n    url: redis://:${REDIS_PASSWORD}@h:6379/0\n",
    )
    config = load_config(path)
    assert config.options_for("redis") == {"url": "redis://:${REDIS_PASSWORD}@h:6379/0"}  # kept unexpanded
    with pytest.raises(ConfigError, match="REDIS_PASSWORD is not set"):
        load_config({"backend": "redis", "redis": {"url": "redis://:${REDIS_PASSWORD}@h:6379/0"}})


def test_a_null_namespace_means_none() -> None:
    assert load_config({"namespace": None}).namespace == ""


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("storage:\n  backend: local\n  backend: redis\n", 3, "backend"),
        ("storage:\n  local:\n    path: a.db\n    timeout: 1\n    path: b.db\n", 5, "path"),
        ("storage: {namespace: a, namespace: b}\n", 1, "namespace"),
        ("storage:\n  backend: local\nstorage:\n  backend: redis\n", 3, "storage"),
    ],
)
def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path: Path, text: str, line: int, key: str) -> None:
    path = write(tmp_path / "agent.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert f"line {line}: " in message
    assert f"the key {key!r} is given twice" in message
    assert "Python tags" not in message


def test_the_python_tag_note_is_only_for_tags(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  backend: local\n   namespace: a\n")
    with pytest.raises(ConfigError, match=r"line \d+: not valid YAML") as info:
        load_config(path)
    assert "Python tags" not in str(info.value)
    tagged = write(tmp_path / "tagged.yaml", "storage:\n  backend: !custom local\n")
    with pytest.raises(ConfigError, match="no Python tags"):
        load_config(tagged)


@pytest.mark.parametrize(
    "value", ["${UNSET_VAR.db", "/srv/${STATE_DIR/a.db", "${}", "${1ABC}", "pre ${ post", "${VAR:-x"]
)
def test_an_unclosed_or_nameless_reference_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("STATE_DIR", "/srv")
    path = write(tmp_path / "agent.yaml", f"storage:\n  local:\n    path: '{value}'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "storage.local.path"
    assert "'${' is not closed by '}' or names no variable" in str(info.value)
    assert value not in str(info.value), "the value may be a password: it is never echoed"


def test_a_literal_dollar_brace_is_written_doubled(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  local:\n    path: 'cost $${x}.db'\n")
    assert load_config(path).options_for("local") == {"path": "cost ${x}.db"}


def test_read_only_is_a_core_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RO", "yes")
    assert load_config(write(tmp_path / "a.yaml", "storage:\n  read_only: true\n")).read_only is True
    assert load_config(write(tmp_path / "b.yaml", "storage:\n  read_only: ${RO}\n")).read_only is True
    assert load_config(write(tmp_path / "c.yaml", "storage:\n  backend: local\n")).read_only is False
    assert load_config({"read_only": "false"}).read_only is False


def test_sections_know_the_folder_of_their_file(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  local:\n    path: data/a.db\n")
    config = load_config(path)
    assert getattr(config.options_for("local"), "base_dir", None) == str(tmp_path)
    assert getattr(config.options_for("redis"), "base_dir", None) == str(tmp_path), "even a section not written"
    assert getattr(load_config({"local": {}}).options_for("local"), "base_dir", "unset") is None


def test_change_feed_fields_are_read() -> None:
    config = load_config({"storage": {"change_feed": True, "change_retention": 500}})
    assert (config.change_feed, config.change_retention) == (True, 500)
    assert load_config({"storage": {}}).change_feed is False


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"change_feed": "yes"}, "storage.change_feed"),
        ({"change_retention": 0}, "storage.change_retention"),
        ({"change_retention": 1.5}, "storage.change_retention"),
        ({"change_retention": True}, "storage.change_retention"),
    ],
)
def test_change_feed_fields_are_checked(fields: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"storage": fields})
    assert caught.value.field == field


def test_an_unhashable_yaml_key_is_yamls_own_error_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path / "agent.yaml", "storage:\n  ? [a, b]\n  : 1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_a_section_is_a_read_only_mapping_that_pickles() -> None:
    import pickle

    section = Section({"a": 1}, base_dir="/srv")
    assert (len(section), list(section), section["a"]) == (1, ["a"], 1)
    copy = pickle.loads(pickle.dumps(section))  # noqa: S301 - our own object
    assert (copy, copy.base_dir) == ({"a": 1}, "/srv")
