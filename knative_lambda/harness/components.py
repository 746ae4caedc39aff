"""The platform processes of the local target, in start order.

Each is ``python -m <module>`` with the platform settings in its environment
(:meth:`Settings.to_env`) and ``KL_PORT`` set to its own port. Every URL is
allocated before anything starts, so each process knows where the others are.
A component registers its own triggers with the broker when it starts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    name: str
    module: str
    url_setting: str  # the Settings field that carries this component's base URL ("" if none)
    health_path: str = "/healthz"  # what answers 200 once the component can do its job


COMPONENTS: tuple[Component, ...] = (
    Component("broker", "knative_lambda.platform.broker", "broker_url"),
    Component("gateway", "knative_lambda.platform.serving", "gateway_url"),
    Component("builder", "knative_lambda.platform.builder", "builder_url", "/readyz"),
    Component("deployer", "knative_lambda.platform.deployer", ""),
)
