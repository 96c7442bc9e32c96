"""Hookline's testing helpers: ESP traffic, signed the way each ESP signs it.

What the tests, the load tests (``loadtests/``), the benchmarks (``bench/``) and the CLI's
``hookline demo`` / ``hookline sign`` send to a gateway. Shipped with the gateway (the CLI
uses it), but never imported by the gateway itself: ``handlers/`` holds only what it runs.

``samples_for(provider)`` is the way in::

    samples = samples_for("sendgrid")
    source, material = samples.make_source("main")
    body = samples.example_body(5, seed=1, event="bounce")
    request = samples.signed_request(source, material, body, now=datetime.now(UTC))

One private module per ESP (``hookline_testing/_<provider>.py``) holds its ``SAMPLES``.
Amazon SES's extras (the test certificate, SNS signing, single SES records) are public here
because SNS signing needs more than the three calls.
"""

from __future__ import annotations

from hookline_testing._batch import BatchItems
from hookline_testing._http import basic_auth_header
from hookline_testing._samples import Samples, samples_for
from hookline_testing._ses import (
    SES_EVENT_TYPES,
    TEST_CERT_URL,
    TEST_TOPIC_ARN,
    SnsSigningMaterial,
    make_test_certificate,
    ses_event,
    sign_envelope,
)

__all__ = [
    "SES_EVENT_TYPES",
    "TEST_CERT_URL",
    "TEST_TOPIC_ARN",
    "BatchItems",
    "Samples",
    "SnsSigningMaterial",
    "basic_auth_header",
    "make_test_certificate",
    "samples_for",
    "ses_event",
    "sign_envelope",
]
