"""Network faults without netem: a userspace TCP proxy with run-time faults.

- :mod:`.model`   fault state (plain dataclasses) and the pure per-connection /
                  per-chunk decisions;
- :mod:`.proxy`   the asyncio proxy that obeys them;
- :mod:`.control` its HTTP control API and :class:`FaultProxyClient`;
- :mod:`.links`   one proxy process per platform link (rabbitmq, s3) for ``kl up --faults``.

Run one alone: ``python -m knative_lambda.harness.faults --listen 127.0.0.1:P
--upstream 127.0.0.1:Q --control-port C``.
"""
