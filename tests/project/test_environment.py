"""The strict environment reader behind settings.py: each bad value names its variable."""

import pytest

from project.environment import ConfigurationError, Environment, redact_url


def read(**values):
    return Environment(values)


def test_missing_required_variable_names_it():
    with pytest.raises(ConfigurationError, match="DJANGO_SECRET_KEY: is required"):
        read().str("DJANGO_SECRET_KEY")


def test_empty_value_counts_as_unset():
    assert read(LOG_FILE="").str("LOG_FILE", default="fallback") == "fallback"


def test_integer_is_parsed():
    assert read(DB_POOL_MAX_SIZE="25").int("DB_POOL_MAX_SIZE", default=10) == 25


def test_word_for_an_integer_names_the_variable_and_value():
    with pytest.raises(ConfigurationError, match=r"DB_POOL_MAX_SIZE: 'ten' is not a whole number"):
        read(DB_POOL_MAX_SIZE="ten").int("DB_POOL_MAX_SIZE", default=10)


def test_integer_below_minimum_is_rejected():
    with pytest.raises(ConfigurationError, match="DB_POOL_MAX_SIZE: 0 is below the minimum of 1"):
        read(DB_POOL_MAX_SIZE="0").int("DB_POOL_MAX_SIZE", default=10, minimum=1)


def test_float_above_maximum_is_rejected():
    with pytest.raises(ConfigurationError, match=r"RATE: 1\.5 is above the maximum of 1\.0"):
        read(RATE="1.5").float("RATE", default=0.0, maximum=1.0)


@pytest.mark.parametrize(
    ("text", "expected"), [("true", True), ("On", True), ("0", False), ("no", False)]
)
def test_boolean_words_are_understood(text, expected):
    assert read(FLAG=text).bool("FLAG", default=None) is expected


def test_ambiguous_boolean_is_rejected_rather_than_read_as_false():
    with pytest.raises(ConfigurationError, match="DB_POOL: 'maybe' is not a boolean"):
        read(DB_POOL="maybe").bool("DB_POOL", default=True)


def test_choice_outside_the_list_names_the_choices():
    with pytest.raises(ConfigurationError, match="DJANGO_ENV: 'staging' is not one of development"):
        read(DJANGO_ENV="staging").choice("DJANGO_ENV", ["development", "production"])


def test_list_splits_on_commas_and_drops_blanks():
    hosts = read(DJANGO_ALLOWED_HOSTS="a.example.com, b.example.com,,").list("DJANGO_ALLOWED_HOSTS")
    assert hosts == ["a.example.com", "b.example.com"]


def test_unparsable_database_url_names_the_variable():
    with pytest.raises(ConfigurationError, match="DATABASE_URL: 'notaurl' is not a sqlite"):
        read(DATABASE_URL="notaurl").database_url("DATABASE_URL")


def test_database_url_with_bad_port_names_the_variable():
    with pytest.raises(ConfigurationError, match=r"DATABASE_URL: .* cannot be parsed"):
        read(DATABASE_URL="postgres://u@db:port/orders").database_url("DATABASE_URL")


def test_unsupported_database_engine_is_rejected():
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        read(DATABASE_URL="mysql://u@db/orders").database_url("DATABASE_URL")


def test_database_url_without_a_name_is_rejected():
    with pytest.raises(ConfigurationError, match="names no database"):
        read(DATABASE_URL="postgres://u@db:5432").database_url("DATABASE_URL")


def test_database_password_is_hidden_in_errors():
    with pytest.raises(ConfigurationError) as error:
        read(DATABASE_URL="postgres://u:hunter2@db:x/orders").database_url("DATABASE_URL")
    assert "hunter2" not in str(error.value)


def test_postgres_url_is_parsed_with_its_options():
    config = read(DATABASE_URL="postgres://app:pw@db:5433/orders?sslmode=require").database_url(
        "DATABASE_URL"
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db", 5433, "orders")
    assert config["OPTIONS"] == {"sslmode": "require"}


def test_redis_url_must_be_a_redis_url():
    with pytest.raises(ConfigurationError, match="REDIS_URL"):
        read(REDIS_URL="http://cache:6379").redis_url("REDIS_URL")


def test_redis_url_with_bad_port_is_rejected():
    with pytest.raises(ConfigurationError, match=r"REDIS_URL: .* invalid port"):
        read(REDIS_URL="redis://cache:abc/0").redis_url("REDIS_URL")


def test_throttle_rate_must_have_a_period():
    with pytest.raises(ConfigurationError, match="API_THROTTLE_RATE: '1200' is not a rate"):
        read(API_THROTTLE_RATE="1200").throttle_rate("API_THROTTLE_RATE")


def test_redact_url_hides_only_the_password():
    assert redact_url("redis://:s3cret@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("sqlite:///db.sqlite3") == "sqlite:///db.sqlite3"
