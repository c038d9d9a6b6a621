"""The settings of the shared engines: their variables, their checks, and no password in an
error message."""

from __future__ import annotations

import pytest

from pulse.config import ConfigError, load


def test_unset_urls_keep_the_embedded_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PULSE_SENSORS_DATABASE_URL", raising=False)
    monkeypatch.delenv("PULSE_BUS_URL", raising=False)
    settings = load()
    assert settings.sensors.database_url is None
    assert settings.bus.url is None


def test_the_variables_set_the_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_SENSORS_DATABASE_URL", "postgresql://pulse:pw@db:5432/pulse")
    monkeypatch.setenv("PULSE_BUS_URL", "nats://nats:4222")
    monkeypatch.setenv("PULSE_BUS_STREAM", "LOGS_A")
    settings = load()
    assert settings.sensors.database_url.get_secret_value() == "postgresql://pulse:pw@db:5432/pulse"
    assert settings.bus.url.get_secret_value() == "nats://nats:4222"
    assert settings.bus.stream == "LOGS_A"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PULSE_SENSORS_DATABASE_URL", "mysql://u:hunter2@db/x", "postgresql://"),
        ("PULSE_BUS_URL", "http://u:hunter2@nats:4222", "nats://"),
    ],
)
def test_a_wrong_scheme_names_the_key_and_hides_the_url(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as error:
        load()
    assert variable in str(error.value)
    assert message in str(error.value)
    assert "hunter2" not in str(error.value)


def test_the_bus_keeps_batch_ids_no_longer_than_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_BUS_URL", "nats://nats:4222")
    monkeypatch.setenv("PULSE_BUS_MAX_AGE_S", "60")
    monkeypatch.setenv("PULSE_INGEST_DEDUP_WINDOW_S", "120")
    with pytest.raises(ConfigError, match=r"ingest.dedup_window_s .* bus.max_age_s"):
        load()


def test_a_stream_name_jetstream_refuses_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_BUS_STREAM", "logs.of pulse")
    with pytest.raises(ConfigError, match=r"bus\.stream"):
        load()


def test_urls_may_come_from_mounted_files(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    database, bus = tmp_path / "database", tmp_path / "bus"
    database.write_text("\npostgresql://pulse:pw@db/pulse\n")
    bus.write_text("nats://nats:4222\n")
    monkeypatch.setenv("PULSE_SENSORS_DATABASE_URL_FILE", str(database))
    monkeypatch.setenv("PULSE_BUS_URL_FILE", str(bus))
    settings = load()
    assert settings.sensors.database_url.get_secret_value() == "postgresql://pulse:pw@db/pulse"
    assert settings.bus.url.get_secret_value() == "nats://nats:4222"


def test_a_url_file_is_checked_like_the_url(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    database = tmp_path / "database"
    database.write_text("mysql://u:hunter2@db/x\n")
    monkeypatch.setenv("PULSE_SENSORS_DATABASE_URL_FILE", str(database))
    with pytest.raises(ConfigError) as error:
        load()
    assert "database_url_file: the URL in" in str(error.value)
    assert "must start with postgresql://" in str(error.value)
    assert "hunter2" not in str(error.value)
    monkeypatch.setenv("PULSE_SENSORS_DATABASE_URL_FILE", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="database_url_file: cannot read"):
        load()
