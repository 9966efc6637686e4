"""``fal_webhook`` never reaches the access log (the served API is checked in test_serve.py)."""

import logging

import pytest

from api.access_log import ACCESS_LOGGER, RedactQuery, install_access_log_redaction, redact_query


@pytest.mark.parametrize(
    ("path", "shown"),
    [
        ("/m?fal_webhook=https%3A%2F%2Fh%2F%3Ftoken%3Ds", "/m?fal_webhook=[redacted]"),
        ("/m?a=1&fal_webhook=x&b=2", "/m?a=1&fal_webhook=[redacted]&b=2"),
        ("/m?fal%5Fwebhook=x", "/m?fal%5Fwebhook=[redacted]"),  # the server decodes names too
        ("/m?fal_webhook_not=x&q=fal_webhook=y", "/m?fal_webhook_not=x&q=fal_webhook=y"),
        ("/m", "/m"),
    ],
)
def test_redact_query(path: str, shown: str) -> None:
    assert redact_query(path) == shown


def test_the_access_logger_redacts_once_however_many_apps(caplog: pytest.LogCaptureFixture) -> None:
    install_access_log_redaction()
    install_access_log_redaction()
    logger = logging.getLogger(ACCESS_LOGGER)
    assert sum(isinstance(f, RedactQuery) for f in logger.filters) == 1
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        logger.info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "POST", "/m?fal_webhook=s", "1.1", 200)
    assert caplog.messages == ['1.2.3.4:5 - "POST /m?fal_webhook=[redacted] HTTP/1.1" 200']
