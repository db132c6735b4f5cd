import pytest

from service.settings import Settings, SettingsError


def test_defaults(tmp_path):
    s = Settings.from_env({"WA_DATA_DIR": str(tmp_path)})
    assert (s.host, s.port, s.api_key) == ("0.0.0.0", 3001, None)
    assert s.run_dir == tmp_path / "run"
    assert s.supervisor_socket == tmp_path / "run" / "supervisor.sock"
    assert s.watchdog_initial_delay == 10.0
    assert s.shutdown_timeout < 15  # under supervisord's stopwaitsecs for the gateway


@pytest.mark.parametrize("env", [
    {"WA_PORT": "abc"}, {"WA_PORT": "70000"}, {"WA_LOG_FORMAT": "xml"},
    {"WA_WATCHDOG_INITIAL_DELAY": "-1"}, {"WA_LOG_LEVEL": "loud"},
])
def test_bad_values_fail_loudly(env):
    with pytest.raises(SettingsError):
        Settings.from_env(env)


# Phone numbers: tests/app/test_phone_numbers.py, with the vectors shared with the worker.
