"""The soak's users (``python -m loadtests.soak``): the locustfile's REST, gRPC and v2 users, weighted, beside a
user sending bad requests, each of which must get its own error status.

A bad request answered with the status it deserves counts as a success; any other answer (a 5xx, a 200 for
garbage, a hang) is a failure named after the request, so the soak's failures are exactly the unexpected
answers.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, constant_pacing, task

from loadtests.locustfile import GrpcUser, RestUser, V2User, _Zoo

# what a careless client sends, and the status the gateway must answer (docs/gateway.md, Errors)
BAD_REQUESTS = (
    # kind, path suffix, body, content type, expected status
    ("not_an_image", "", b"this is not an image" * 50, "application/octet-stream", 415),
    ("empty_body", "", b"", "application/octet-stream", 400),
    ("truncated_header", "", b"\x89PNG\r\n\x1a\n\x00\x00", "image/png", 415),
    ("bad_topk", "?topk=0", None, "image/jpeg", 400),
    ("unsupported_content_type", "", None, "text/plain", 415),
    ("unknown_model", None, None, "image/jpeg", 404),
)


class SoakRest(RestUser):
    weight = 4


class SoakGrpc(GrpcUser):
    weight = 3


class SoakV2(V2User):
    weight = 2


class BadRequestUser(_Zoo, FastHttpUser):
    """Paced: a bad request costs the gateway a millisecond, so an unpaced user would send most of the traffic."""

    weight = 1
    wait_time = constant_pacing(0.25)  # at most 4 per second per user: about a tenth of the soak's requests

    @task
    def bad(self) -> None:
        kind, suffix, body, content_type, expected = random.choice(BAD_REQUESTS)
        path = "/predict/no_such_model" if suffix is None else f"/predict/{self.model}{suffix}"
        with self.client.post(path, data=self.image if body is None else body, name=f"bad {kind}",
                              headers={"Content-Type": content_type}, catch_response=True) as response:
            if response.status_code == expected:
                response.success()
            else:
                response.failure(f"status {response.status_code} instead of {expected}: {response.text[:200]}")

