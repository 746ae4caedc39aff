"""The reference platform's broker: the local equivalent of Knative Eventing's RabbitMQ broker.

Pure decisions: ``filters`` (trigger filters), ``triggers`` (Trigger spec,
retry schedule and decision). Receivers dedupe with ``contract.dedupe``.
Adapters: ``topology`` (RabbitMQ names/declarations), ``publisher``
(confirmed publishes), ``ingress`` (HTTP -> RabbitMQ), ``dispatcher``
(RabbitMQ -> HTTP per trigger), ``store`` (trigger specs on disk), ``app``
(the process: ``python -m knative_lambda.platform.broker``), ``client``
(Python API) and ``commands`` (``kl emit``, ``kl triggers``).
"""
