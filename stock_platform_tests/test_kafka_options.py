"""One set of security settings becomes the right options for kafka-python, librdkafka and Spark, and never shows the password."""

from __future__ import annotations

import logging
import subprocess

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from stock_platform.config import Settings
from stock_platform.kafka_options import (
    KafkaSecurity,
    check_kafka_security,
    kafka_python_options,
    librdkafka_options,
    spark_kafka_options,
)

PASSWORD = 'pa"ss\\word;} with spaces'  # a quote, a backslash, a JAAS terminator: all must survive quoting
_BUILDERS = (kafka_python_options, librdkafka_options, spark_kafka_options)


def _sasl(mechanism: str = "SCRAM-SHA-512", protocol: str = "SASL_SSL") -> Settings:
    return Settings.defaults().replace(kafka_security_protocol=protocol, kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="quotes-app", kafka_sasl_password=PASSWORD,
    )  # fmt: skip


@pytest.mark.parametrize("build", _BUILDERS)
def test_plaintext_adds_nothing(build) -> None:
    assert build(Settings.defaults()) == {}


def test_ssl_sets_only_the_protocol() -> None:
    ssl = Settings.defaults().replace(kafka_security_protocol="SSL")
    assert kafka_python_options(ssl) == {"security_protocol": "SSL"}
    assert librdkafka_options(ssl) == {"security.protocol": "SSL"}
    assert spark_kafka_options(ssl) == {"kafka.security.protocol": "SSL"}


def test_sasl_options_for_each_client_library() -> None:
    settings = _sasl()
    assert kafka_python_options(settings) == {
        "security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "quotes-app", "sasl_plain_password": PASSWORD,
    }  # fmt: skip
    assert librdkafka_options(settings) == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "quotes-app", "sasl.password": PASSWORD,
    }  # fmt: skip
    spark = spark_kafka_options(settings)
    assert spark["kafka.security.protocol"] == "SASL_SSL" and spark["kafka.sasl.mechanism"] == "SCRAM-SHA-512"
    assert spark["kafka.sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="quotes-app" password="pa\\"ss\\\\word;} with spaces";'
    )


@pytest.mark.parametrize(
    ("mechanism", "module"),
    [
        ("PLAIN", "plain.PlainLoginModule"),
        ("SCRAM-SHA-256", "scram.ScramLoginModule"),
        ("SCRAM-SHA-512", "scram.ScramLoginModule"),
    ],
)
def test_jaas_login_module_follows_the_mechanism(mechanism: str, module: str) -> None:
    jaas = spark_kafka_options(_sasl(mechanism, "SASL_PLAINTEXT"))["kafka.sasl.jaas.config"]
    assert jaas.startswith(f"org.apache.kafka.common.security.{module} required ")


def test_options_are_accepted_by_the_client_libraries() -> None:
    settings = _sasl("SCRAM-SHA-256")
    for client in (KafkaAdminClient, KafkaConsumer, KafkaProducer):
        assert set(kafka_python_options(settings)) <= set(client.DEFAULT_CONFIG), client.__name__
    # librdkafka checks every property (name and value) when the client is built, before connecting.
    Producer({"bootstrap.servers": "127.0.0.1:1", **librdkafka_options(settings)}).flush(0)


def test_password_is_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    settings = _sasl()
    shown = [repr(settings), str(settings), str(settings.describe()), repr(KafkaSecurity.of(settings))]
    for build in _BUILDERS:
        options = build(settings)
        shown += [repr(options), str(options), f"{options}"]
        with caplog.at_level(logging.INFO):
            logging.getLogger("test").info("client options %s", options)
    shown.append(caplog.text)
    assert all(PASSWORD not in text and "word;}" not in text for text in shown)
    assert settings.describe()["kafka_sasl_password"] == "****"
    assert "****" in caplog.text, "the masked value is what a log line shows"


@pytest.mark.parametrize(
    ("protocol", "mechanism", "username", "password", "message"),
    [
        ("TLS", "", "", "", "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
        ("SASL_SSL", "", "u", "secret-1", "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
        ("SASL_SSL", "GSSAPI", "u", "secret-1", "KAFKA_SASL_MECHANISM must be one of"),
        ("SASL_SSL", "PLAIN", "", "secret-1", "KAFKA_SASL_USERNAME must be set with KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
        ("SASL_PLAINTEXT", "PLAIN", "u", "", "KAFKA_SASL_PASSWORD must be set"),
        ("PLAINTEXT", "", "u", "secret-1", "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD needs KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
        ("SSL", "PLAIN", "", "", "KAFKA_SASL_MECHANISM needs KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_bad_combinations_are_refused_without_quoting_the_password(
    protocol: str, mechanism: str, username: str, password: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        check_kafka_security(protocol, mechanism, username, password)
    assert "secret-1" not in str(caught.value)
    with pytest.raises(ValueError, match=message):
        KafkaSecurity(protocol, mechanism, username, password)


_JAAS_CHECK = """
import java.util.Map;
import org.apache.kafka.common.config.types.Password;
import org.apache.kafka.common.security.JaasContext;

public class JaasCheck {
  public static void main(String[] lines) {
    for (String line : lines) {
      var entry = JaasContext.loadClientContext(Map.of("sasl.jaas.config", new Password(line))).configurationEntries().get(0);
      System.out.println(entry.getLoginModuleName() + " " + java.util.HexFormat.of().formatHex(
          String.valueOf(entry.getOptions().get("password")).getBytes(java.nio.charset.StandardCharsets.UTF_8)));
    }
  }
}
"""


@pytest.mark.integration
def test_kafkas_own_jaas_parser_reads_back_every_password(base_settings: Settings, tmp_path) -> None:
    """The Java client Spark runs parses our JAAS line into exactly the password we gave, whatever it holds."""
    from stock_platform.runtime.jars import kafka_broker_jars

    listed = subprocess.run(["java", "--list-modules"], capture_output=True, text=True)
    if "jdk.compiler" not in listed.stdout:
        pytest.skip("running a Java source file needs a JDK (jdk.compiler); this machine has only a JRE")
    passwords = [PASSWORD, "plain", "new\nline\rcr\ttab", "ünïcödé €", "\\123 octal-looking", 'ends with \\"']
    lines = [spark_kafka_options(_sasl("PLAIN").replace(kafka_sasl_password=p))["kafka.sasl.jaas.config"] for p in passwords]
    source = tmp_path / "JaasCheck.java"
    source.write_text(_JAAS_CHECK)
    classpath = str(kafka_broker_jars(base_settings.cache_dir)[0].parent / "*")
    done = subprocess.run(["java", "-cp", classpath, str(source), *lines], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    parsed = [line.split(" ") for line in done.stdout.decode().splitlines()]
    assert [m for m, _ in parsed] == ["org.apache.kafka.common.security.plain.PlainLoginModule"] * len(passwords)
    assert [bytes.fromhex(h).decode() for _, h in parsed] == passwords
