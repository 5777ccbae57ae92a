"""What each container does with the requests in flight when it gets SIGTERM (docs/deploy.md, "Draining").

    python -m loadtests.drain [--gateway-image IMAGE]

Starts the TorchServe pod and the gateway as tests/deploy/test_images.py does (`make images` first), sends a
dozen predictions at once through the gateway, and sends SIGTERM to one container 0.3 s later: first the
gateway's (it drains), then, in a fresh pod, TorchServe's. Prints how many requests were in flight and how
each was answered.
"""

from __future__ import annotations

import argparse
from collections import Counter

from tests.deploy.docker import GATEWAY_IMAGE, TORCHSERVE_IMAGE, docker, require_images
from tests.deploy.pod import across_a_signal, gateway_url, predict, running_pod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-image", default=GATEWAY_IMAGE)
    args = parser.parse_args(argv)
    require_images(TORCHSERVE_IMAGE, args.gateway_image)
    for signalled in ("gateway", "torchserve"):
        with running_pod(TORCHSERVE_IMAGE, args.gateway_image) as names:
            url = gateway_url(names)
            assert predict(url).status_code == 200
            in_flight, statuses, last = across_a_signal(
                url, lambda: docker("kill", "--signal", "TERM", names[signalled]))
            answers = ", ".join(f"{n} x {status}" for status, n in sorted(Counter(statuses).items()))
            print(f"SIGTERM to {signalled}: {in_flight} of {len(statuses)} requests in flight; answers: {answers}; "
                  f"the last {last:.2f} s after the signal")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
