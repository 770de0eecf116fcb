"""A ClickHouse user per streamgauge role: ``streamgauge migrate users`` (docs/clickhouse-users.md).

The roles, their grants, settings profiles and quotas are ``schemas/users/roles.sql``; a user
is made for each role whose password is set (STREAMGAUGE_CLICKHOUSE_MIGRATE_PASSWORD,
_INGEST_PASSWORD, _API_PASSWORD), and its password follows the setting on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from clickhouse_connect.driver.exceptions import DatabaseError

from streams.clickhouse import sync_client
from streams.errors import UserError
from streams.migrations.files import split_statements
from streams.migrations.render import quote_identifier, quote_literal
from streams.settings import SCHEMAS, Settings, env_name

ROLES_SQL = SCHEMAS / "users" / "roles.sql"


@dataclass(frozen=True)
class RoleUser:
    name: str
    role: str
    setting: str  # the Settings field of its password

    @property
    def variable(self) -> str:
        return env_name(self.setting)


USERS = (
    RoleUser("streamgauge_migrate", "streamgauge_migrate_role", "clickhouse_migrate_password"),
    RoleUser("streamgauge_ingest", "streamgauge_ingest_role", "clickhouse_ingest_password"),
    RoleUser("streamgauge_api", "streamgauge_api_role", "clickhouse_api_password"),
)


def statements(settings: Settings, placeholders: bool = False) -> list[str]:
    """The roles, then each user whose password is set (every user, with ``placeholders``)."""
    database = quote_identifier(settings.clickhouse_database)
    sql = [s.replace("{database}", database) for s in split_statements(ROLES_SQL.read_text())]
    for user in USERS:
        password = getattr(settings, user.setting)
        if placeholders:
            password = f"<{user.name.removeprefix('streamgauge_')} password>"
        if not password:
            continue
        sql += [
            f"CREATE USER IF NOT EXISTS {user.name} IDENTIFIED WITH sha256_password BY "
            + quote_literal(password),
            f"ALTER USER {user.name} IDENTIFIED WITH sha256_password BY " + quote_literal(password),
            f"GRANT {user.role} TO {user.name}",
        ]
    return sql


def create(settings: Settings) -> list[RoleUser]:
    """Run the statements as the configured (administrator) user; the users made."""
    client = sync_client(settings, database="default")
    for statement in statements(settings):
        try:
            client.command(statement)
        except DatabaseError as error:
            raise _refused(settings, error) from None
    return [user for user in USERS if getattr(settings, user.setting)]


def _refused(settings: Settings, error: DatabaseError) -> UserError:
    where = f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port}"
    if "Code: 497" in str(error):
        return UserError(
            f"{where} does not let {settings.clickhouse_user!r} create users and roles "
            "(ACCESS_DENIED); run `migrate users` as an administrator (access_management = 1; "
            "the clickhouse-server image: CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1), or print "
            "the SQL with --print and have one run it."
        )
    text = str(error)
    for user in USERS:
        secret = getattr(settings, user.setting)
        if secret:
            text = text.replace(secret, "***")
    first = (text.strip().splitlines() or ["?"])[0][:200]
    return UserError(f"{where} refused a user statement: {first}")
