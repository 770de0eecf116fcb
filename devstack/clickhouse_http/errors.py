"""ClickHouse's errors as its HTTP interface reports them: code, name, message and HTTP status."""

from __future__ import annotations

import re

# The engine's own messages read "Code: 62. DB::Exception: <message> (SYNTAX_ERROR)", sometimes
# with the version too, or wrapped: an error in INSERT data that came from a file reads
# "Code: 27. DB::Exception: Code: 27. DB::Exception: <message> (NAME) (version V). (NAME)".
_ENGINE_MESSAGE = re.compile(
    r"Code: (\d+)\. DB::Exception: (?:Code: \d+\. DB::Exception: )*(.*)", re.S
)
_SUFFIX = re.compile(r"\s*\((?:version [^)]*|([A-Z][A-Z0-9_]*))\)\.?\s*$")

# ClickHouse's exceptionCodeToHTTPStatus, keyed by error name; every other error is a 500.
_HTTP_STATUS = {
    "REQUIRED_PASSWORD": 401,
    **dict.fromkeys(
        [
            "UNKNOWN_USER",
            "WRONG_PASSWORD",
            "AUTHENTICATION_FAILED",
            "SET_NON_GRANTED_ROLE",
            "ACCESS_DENIED",
        ],
        403,
    ),
    **dict.fromkeys(
        [
            "BAD_ARGUMENTS",
            "CANNOT_COMPILE_REGEXP",
            "CANNOT_PARSE_TEXT",
            "CANNOT_PARSE_ESCAPE_SEQUENCE",
            "CANNOT_PARSE_QUOTED_STRING",
            "CANNOT_PARSE_DATE",
            "CANNOT_PARSE_DATETIME",
            "CANNOT_PARSE_NUMBER",
            "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
            "CANNOT_PARSE_IPV4",
            "CANNOT_PARSE_IPV6",
            "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
            "CANNOT_PARSE_UUID",
            "DUPLICATE_COLUMN",
            "ILLEGAL_COLUMN",
            "UNKNOWN_ELEMENT_IN_AST",
            "UNKNOWN_TYPE_OF_AST_NODE",
            "THERE_IS_NO_COLUMN",
            "TOO_DEEP_AST",
            "TOO_BIG_AST",
            "UNEXPECTED_AST_STRUCTURE",
            "SYNTAX_ERROR",
            "INCORRECT_DATA",
            "TYPE_MISMATCH",
            "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        ],
        400,
    ),
    **dict.fromkeys(
        [
            "UNKNOWN_TABLE",
            "UNKNOWN_FUNCTION",
            "UNKNOWN_IDENTIFIER",
            "UNKNOWN_TYPE",
            "UNKNOWN_STORAGE",
            "UNKNOWN_DATABASE",
            "UNKNOWN_SETTING",
            "UNKNOWN_DIRECTION_OF_SORTING",
            "UNKNOWN_AGGREGATE_FUNCTION",
            "UNKNOWN_FORMAT",
            "UNKNOWN_DATABASE_ENGINE",
            "UNKNOWN_TYPE_OF_QUERY",
            "UNKNOWN_ROLE",
        ],
        404,
    ),
    "QUERY_IS_TOO_LARGE": 413,
    "NOT_IMPLEMENTED": 501,
    "SOCKET_TIMEOUT": 503,
    "CANNOT_OPEN_FILE": 503,
    "CANNOT_SCHEDULE_TASK": 503,
    "HTTP_LENGTH_REQUIRED": 411,
    "TIMEOUT_EXCEEDED": 408,
    "UNSUPPORTED_MEDIA_TYPE": 415,
}

# The errors this server raises itself (the engine raises all the others).
BAD_ARGUMENTS = (36, "BAD_ARGUMENTS")
NOT_IMPLEMENTED = (48, "NOT_IMPLEMENTED")
SYNTAX_ERROR = (62, "SYNTAX_ERROR")
UNKNOWN_SETTING = (115, "UNKNOWN_SETTING")
READONLY = (164, "READONLY")
QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING = (216, "QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING")
CANNOT_DECOMPRESS = (271, "CANNOT_DECOMPRESS")
SESSION_NOT_FOUND = (372, "SESSION_NOT_FOUND")
SESSION_IS_LOCKED = (373, "SESSION_IS_LOCKED")
INVALID_SESSION_TIMEOUT = (374, "INVALID_SESSION_TIMEOUT")
AUTHENTICATION_FAILED = (516, "AUTHENTICATION_FAILED")
STD_EXCEPTION = (1001, "STD_EXCEPTION")


class ClickHouseError(Exception):
    """An error answered the way ClickHouse answers it: HTTP status, code header, one-line body."""

    def __init__(self, error: tuple[int, str], message: str) -> None:
        super().__init__(message)
        self.code, self.name = error
        self.message = message

    @classmethod
    def from_engine(cls, error: BaseException) -> ClickHouseError:
        """Recover code, name and message from an exception raised by chDB."""
        match = _ENGINE_MESSAGE.search(str(error))
        if match is None:
            return cls(STD_EXCEPTION, str(error).strip() or type(error).__name__)
        message, name = match.group(2).strip(), None
        while (suffix := _SUFFIX.search(message)) is not None:
            if suffix.group(1) is not None:
                if name not in (None, suffix.group(1)):
                    break  # "(X)" ending the message itself
                name = suffix.group(1)
            message = message[: suffix.start()]
        return cls((int(match.group(1)), name or "UNKNOWN_EXCEPTION"), message)

    @property
    def http_status(self) -> int:
        return _HTTP_STATUS.get(self.name, 500)

    def text(self, version: str) -> str:
        """The body: ``Code: 62. DB::Exception: ... (SYNTAX_ERROR) (version 26.9.2.1)``."""
        return f"Code: {self.code}. DB::Exception: {self.message} ({self.name}) (version {version})"
