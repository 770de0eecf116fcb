"""A broker that wants what a real cluster wants: TLS from its own CA, mTLS, SASL SCRAM and
OAUTHBEARER.

Certificates come from a test-local CA made with openssl; the broker (the local stack's Kafka
jars) listens on PLAINTEXT for its own controller and readiness only, on SSL with client
certificates required, and on SASL_SSL with SCRAM-SHA-512 users created at format time and
OAUTHBEARER tokens of a test identity provider (tests/support/oidc.py), checked against its
keys.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from devstack.daemon import free_port
from devstack.kafka_broker import KafkaBroker
from streams.settings import Settings
from tests.support.certs import authority, openssl, signed
from tests.support.oidc import IdentityProvider

SCRAM_USER = "gateway"
SCRAM_PASSWORD = "gw-scram-9c1e"
KEY_PASSWORD = "client-key-4b7d"
OAUTH_CLIENT, OAUTH_SECRET = "streamgauge", "oidc-secret-2e8a"


@dataclass
class SecureBroker:
    broker: KafkaBroker
    ssl_address: str
    sasl_address: str
    ca: Path
    other_ca: Path  # signed nothing the broker presents
    client_cert: Path
    client_key: Path  # encrypted with KEY_PASSWORD
    identity: IdentityProvider

    @classmethod
    def start(cls, home: Path, cache_dir: Path) -> SecureBroker:
        certs = home / "certs"
        certs.mkdir(parents=True)
        ca = authority(certs, "ca")
        other_ca, _ = authority(certs, "other-ca")
        broker_cert, broker_key = signed(
            certs, "broker", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost"
        )
        client_cert, plain_key = signed(certs, "client", ca, "extendedKeyUsage=clientAuth")
        client_key = certs / "client-encrypted.key"
        openssl("pkcs8", "-topk8", "-in", plain_key, "-out", client_key,
                "-passout", f"pass:{KEY_PASSWORD}", cwd=certs)  # fmt: skip
        keystore = certs / "broker-keystore.pem"
        keystore.write_text(broker_key.read_text() + broker_cert.read_text())

        port, controller, ssl, sasl = (free_port() for _ in range(4))
        listeners = {
            "PLAINTEXT": port,
            "CONTROLLER": controller,
            "SSL": ssl,
            "SASL_SSL": sasl,
        }
        identity = IdentityProvider(OAUTH_CLIENT, OAUTH_SECRET)
        scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        oauth = "org.apache.kafka.common.security.oauthbearer"
        properties = {
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in listeners.items()),
            "advertised.listeners": ",".join(
                f"{n}://127.0.0.1:{p}" for n, p in listeners.items() if n != "CONTROLLER"
            ),
            "listener.security.protocol.map": ",".join(
                f"{n}:{'PLAINTEXT' if n == 'CONTROLLER' else n}" for n in listeners
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": keystore,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": ca[0],
            "listener.name.ssl.ssl.client.auth": "required",
            "sasl.enabled.mechanisms": "SCRAM-SHA-512,OAUTHBEARER",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config": (
                f"{oauth}.OAuthBearerLoginModule required;"
            ),
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class": (
                f"{oauth}.OAuthBearerValidatorCallbackHandler"
            ),
            "sasl.oauthbearer.jwks.endpoint.url": identity.jwks_url,
        }
        extra = "\n" + "".join(f"{name}={value}\n" for name, value in properties.items())
        broker = KafkaBroker(
            home,
            cache_dir,
            port=port,
            controller_port=controller,
            heap="512m",
            name="kafka-secure",
            extra_properties=extra,
            format_options=(
                "--add-scram",
                f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]",
            ),
            # Kafka fetches keys only from the URLs allowed here (none by default).
            jvm_options=(f"-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={identity.jwks_url}",),
        )
        broker.start()
        broker.daemon.wait_ready(broker.ready, 90)
        return cls(
            broker,
            f"127.0.0.1:{ssl}",
            f"127.0.0.1:{sasl}",
            ca[0],
            other_ca,
            client_cert,
            client_key,
            identity,
        )

    def stop(self) -> None:
        self.broker.daemon.stop()
        self.identity.stop()

    def mtls(self, base: Settings) -> Settings:
        """Settings reaching the broker over TLS with a client certificate."""
        return self._tls(
            base,
            self.ssl_address,
            "SSL",
            kafka_ssl_certificate_file=str(self.client_cert),
            kafka_ssl_key_file=str(self.client_key),
            kafka_ssl_key_password=KEY_PASSWORD,
        )

    def scram(self, base: Settings) -> Settings:
        """Settings reaching the broker over TLS with a SCRAM-SHA-512 user."""
        return self._tls(
            base,
            self.sasl_address,
            "SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=SCRAM_USER,
            kafka_sasl_password=SCRAM_PASSWORD,
        )

    def oauthbearer(self, base: Settings) -> Settings:
        """Settings reaching the broker over TLS with tokens of the test identity provider."""
        return self._tls(
            base,
            self.sasl_address,
            "SASL_SSL",
            kafka_sasl_mechanism="OAUTHBEARER",
            kafka_oauthbearer_token_url=self.identity.token_url,
            kafka_oauthbearer_client_id=OAUTH_CLIENT,
            kafka_oauthbearer_client_secret=OAUTH_SECRET,
            kafka_oauthbearer_scope="kafka",
        )

    def _tls(self, base: Settings, address: str, protocol: str, **auth: str) -> Settings:
        """``base`` reaching one listener over TLS from the test CA, authenticated by ``auth``."""
        return dataclasses.replace(
            base,
            kafka_bootstrap_servers=address,
            kafka_security_protocol=protocol,
            kafka_ssl_ca_file=str(self.ca),
            **auth,  # type: ignore[arg-type]
        )
