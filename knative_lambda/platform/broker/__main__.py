"""``python -m knative_lambda.platform.broker``: the broker process (see app.py)."""

from knative_lambda.platform.broker.app import main

main()
