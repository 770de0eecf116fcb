"""Kafka that cannot be reached, in one sentence: with the TLS reason when TLS is the reason.

librdkafka reports a refused certificate only to its log and error callback; the operation
itself just times out. So when a client gives up, the first bootstrap broker is asked again
with Python's own TLS, using the same CA, client certificate and key, and what it says
(an untrusted broker certificate, an unreadable key) is the sentence.
"""

from __future__ import annotations

import socket
import ssl

from streams.errors import UserError
from streams.settings import Settings


def unreachable(settings: Settings, reason: str) -> UserError:
    """The error for a Kafka client that gave up on the brokers (``reason``: what it said)."""
    return tls_error(settings) or UserError(
        f"Kafka at {settings.kafka_bootstrap_servers} is unreachable ({reason}); start it "
        "(`streamgauge dev up` locally) or set STREAMGAUGE_KAFKA_BOOTSTRAP_SERVERS."
    )


def check_tls(settings: Settings) -> None:
    """Fail at once, in one sentence, when TLS to the brokers cannot work (a one-shot
    command asks this first instead of waiting for its Kafka client to time out)."""
    error = tls_error(settings)
    if error is not None:
        raise error


def tls_error(settings: Settings) -> UserError | None:
    """The sentence for what is wrong with TLS to the brokers, or None."""
    problem = tls_problem(settings)
    if problem is None:
        return None
    return UserError(f"Kafka at {settings.kafka_bootstrap_servers}: {problem}.")


def tls_problem(settings: Settings, timeout: float = 5.0) -> str | None:
    """What is wrong with TLS to the first bootstrap broker, or None (not TLS, or no fault)."""
    if "SSL" not in settings.kafka_security_protocol.upper():
        return None
    first = settings.kafka_bootstrap_servers.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    host = host.strip("[]")
    try:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_file or None)
        if settings.kafka_ssl_certificate_file:
            context.load_cert_chain(
                settings.kafka_ssl_certificate_file,
                settings.kafka_ssl_key_file or None,
                settings.kafka_ssl_key_password or None,
            )
    except (ssl.SSLError, OSError) as error:
        return (
            "the CA file, client certificate or key cannot be used "
            f"({getattr(error, 'reason', None) or error}); check STREAMGAUGE_KAFKA_SSL_CA_FILE, "
            "_CERTIFICATE_FILE, _KEY_FILE and _KEY_PASSWORD"
        )
    try:
        with (
            socket.create_connection((host, int(port)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host),
        ):
            return None
    except ssl.SSLCertVerificationError as error:
        trusted = settings.kafka_ssl_ca_file or "the system's CAs"
        return (
            f"the broker's TLS certificate is not trusted ({error.verify_message}); "
            f"it must be signed by a CA in STREAMGAUGE_KAFKA_SSL_CA_FILE (now {trusted})"
        )
    except ssl.SSLError as error:
        return f"the TLS handshake failed ({error.reason or error}); is this a TLS listener?"
    except (OSError, ValueError):
        return None
