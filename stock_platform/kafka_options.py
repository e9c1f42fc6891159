"""How every Kafka client of the platform authenticates, derived once from the settings.

The platform talks to Kafka through three client libraries, each with its own
spelling of the same four settings: kafka-python (admin client, lag readers),
confluent-kafka/librdkafka (the producer) and Spark's Kafka source (the stream
job, through the Java client and a JAAS line). Deriving all three here keeps
them in step. With `KAFKA_SECURITY_PROTOCOL=PLAINTEXT` (the default, a laptop's
own broker) every function returns an empty mapping, so nothing changes there.

The SASL password is a secret: the returned mappings mask it in `repr`/`str`
(a logged config never shows it), `KafkaSecurity` keeps it out of its `repr`,
and no error message here quotes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stock_platform.config import Settings

__all__ = [
    "SASL_MECHANISMS",
    "SECURITY_PROTOCOLS",
    "ClientOptions",
    "KafkaSecurity",
    "check_kafka_security",
    "kafka_python_options",
    "librdkafka_options",
    "spark_kafka_options",
]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_LOGIN_MODULES = {
    "PLAIN": "org.apache.kafka.common.security.plain.PlainLoginModule",
    "SCRAM-SHA-256": "org.apache.kafka.common.security.scram.ScramLoginModule",
    "SCRAM-SHA-512": "org.apache.kafka.common.security.scram.ScramLoginModule",
}
_MASK = "****"


def check_kafka_security(protocol: str, mechanism: str, username: str, password: str) -> None:
    """Raise ValueError naming the settings when they do not form a usable combination (never quoting the password).

    Credentials without a SASL protocol are refused rather than ignored: the likely mistake is a
    forgotten `KAFKA_SECURITY_PROTOCOL`, and ignoring it would send everything in clear text.
    """
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(f"setting KAFKA_SECURITY_PROTOCOL must be one of {', '.join(SECURITY_PROTOCOLS)}, got {protocol!r}")
    if not protocol.startswith("SASL_"):
        given = [n for n, v in (("KAFKA_SASL_MECHANISM", mechanism), ("KAFKA_SASL_USERNAME", username)) if v]
        given += ["KAFKA_SASL_PASSWORD"] if password else []
        if given:
            raise ValueError(
                f"setting {', '.join(given)} needs KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT, "
                f"but it is {protocol}; set the protocol or unset the SASL settings"
            )
        return
    if mechanism not in SASL_MECHANISMS:
        raise ValueError(
            f"setting KAFKA_SASL_MECHANISM must be one of {', '.join(SASL_MECHANISMS)} with "
            f"KAFKA_SECURITY_PROTOCOL={protocol}, got {mechanism!r}"
        )
    missing = [n for n, v in (("KAFKA_SASL_USERNAME", username), ("KAFKA_SASL_PASSWORD", password)) if not v]
    if missing:
        raise ValueError(f"setting {' and '.join(missing)} must be set with KAFKA_SECURITY_PROTOCOL={protocol}")


@dataclass(frozen=True)
class KafkaSecurity:
    """The four security settings on their own, for code that holds no `Settings` (a Dagster resource)."""

    protocol: str = "PLAINTEXT"
    mechanism: str = ""
    username: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        check_kafka_security(self.protocol, self.mechanism, self.username, self.password)

    @classmethod
    def of(cls, source: Settings | KafkaSecurity) -> KafkaSecurity:
        """The security part of `source` (returned as is when it already is one)."""
        if isinstance(source, KafkaSecurity):
            return source
        return cls(
            source.kafka_security_protocol,
            source.kafka_sasl_mechanism,
            source.kafka_sasl_username,
            source.kafka_sasl_password.get_secret_value(),
        )

    @property
    def uses_sasl(self) -> bool:
        """True when the client must log in (SASL_PLAINTEXT or SASL_SSL)."""
        return self.protocol.startswith("SASL_")


class ClientOptions(dict[str, str]):
    """A plain dict of client options whose `repr`/`str` mask the secret values, so logging one is harmless."""

    def __init__(self, options: dict[str, str], secret_keys: tuple[str, ...] = ()) -> None:
        super().__init__(options)
        self._secret_keys = frozenset(secret_keys)

    def __repr__(self) -> str:
        shown = {k: (_MASK if k in self._secret_keys else v) for k, v in self.items()}
        return repr(shown)

    __str__ = __repr__


def kafka_python_options(source: Settings | KafkaSecurity) -> ClientOptions:
    """Keyword arguments for kafka-python's `KafkaAdminClient`, `KafkaConsumer` and `KafkaProducer`."""
    security = KafkaSecurity.of(source)
    if security.protocol == "PLAINTEXT":
        return ClientOptions({})
    options = {"security_protocol": security.protocol}
    if security.uses_sasl:
        options |= {
            "sasl_mechanism": security.mechanism,
            "sasl_plain_username": security.username,  # kafka-python uses the "plain" names for SCRAM too
            "sasl_plain_password": security.password,
        }
    return ClientOptions(options, ("sasl_plain_password",))


def librdkafka_options(source: Settings | KafkaSecurity) -> ClientOptions:
    """Configuration entries for confluent-kafka (librdkafka) producers and consumers."""
    security = KafkaSecurity.of(source)
    if security.protocol == "PLAINTEXT":
        return ClientOptions({})
    options = {"security.protocol": security.protocol}
    if security.uses_sasl:
        options |= {"sasl.mechanism": security.mechanism, "sasl.username": security.username, "sasl.password": security.password}
    return ClientOptions(options, ("sasl.password",))


def _jaas_quoted(value: str) -> str:
    """`value` as a JAAS double-quoted string.

    Kafka reads the line with Java's StreamTokenizer: inside quotes a backslash escapes, and a raw
    line break would end the string, so those four characters are escaped.
    """
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def spark_kafka_options(source: Settings | KafkaSecurity) -> ClientOptions:
    """Options for Spark's Kafka source and sink (`.option(k, v)`): the Java client's settings behind `kafka.`.

    The credentials travel in one `sasl.jaas.config` line. Spark redacts option values that
    mention "password" in its UI and plans, and the Java client logs that setting as [hidden].
    """
    security = KafkaSecurity.of(source)
    if security.protocol == "PLAINTEXT":
        return ClientOptions({})
    options = {"kafka.security.protocol": security.protocol}
    if security.uses_sasl:
        jaas = (
            f"{_LOGIN_MODULES[security.mechanism]} required "
            f"username={_jaas_quoted(security.username)} password={_jaas_quoted(security.password)};"
        )
        options |= {"kafka.sasl.mechanism": security.mechanism, "kafka.sasl.jaas.config": jaas}
    return ClientOptions(options, ("kafka.sasl.jaas.config",))
