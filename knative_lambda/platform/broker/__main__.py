"""``python -m knative_lambda.platform.broker``: the broker process (see app.py)."""

import os

from knative_lambda.errors import ConfigError
from knative_lambda.platform.broker.config import BrokerConfig
from knative_lambda.platform.broker.workers import metrics_dir
from knative_lambda.settings import Settings

try:
    # With ingress workers every process counts into one directory that /metrics sums
    # (prometheus_client's multiprocess mode): it must be set before that library is imported.
    if BrokerConfig.from_env().ingress_workers and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir(Settings.from_env().data_dir))
except ConfigError:
    pass  # main() reports it

from knative_lambda.platform.broker.app import main  # noqa: E402

main()
