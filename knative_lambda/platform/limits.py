"""Rate limits and tenant quotas: pure decisions, plus the HTTP middleware.

Rate limits are token buckets per (operation, tenant); a refused request gets
429 with ``Retry-After``. Configure with ``KL_RATE_LIMITS``, e.g.
``build=5/10,deploy=5/10,manage=50/100`` (tokens per second / burst; a rate of
0 disables that limit). Quotas cap what one tenant (third_party_id) may hold.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from knative_lambda.errors import ConfigError

# Defaults per operation: (tokens per second, burst). Invocations are not limited
# by default: the autoscaler and containerConcurrency govern them.
DEFAULT_RATES: dict[str, tuple[float, int]] = {
    "build": (5.0, 10),  # build.start / job.start / rebuild.start per tenant
    "deploy": (5.0, 10),  # service create/update per tenant
    "manage": (50.0, 100),  # management API calls per client
}


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``take`` says how long to wait."""

    rate: float
    burst: int
    tokens: float = -1.0
    stamp: float = 0.0

    def take(self, now: float) -> float:
        """0.0 when a token was taken; otherwise the seconds until one is available."""
        if self.rate <= 0:
            return 0.0  # rate limiting disabled
        if self.tokens < 0:  # first use: start full
            self.tokens, self.stamp = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


def parse_rates(text: str, defaults: Mapping[str, tuple[float, int]] = DEFAULT_RATES
                ) -> dict[str, tuple[float, int]]:
    """``"build=5/10,deploy=0"`` over the defaults; ConfigError naming the bad item."""
    rates = dict(defaults)
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        rate_text, _, burst_text = value.partition("/")
        try:
            rate = float(rate_text)
            burst = int(burst_text) if burst_text else max(1, math.ceil(rate))
        except ValueError:
            raise ConfigError(f"KL_RATE_LIMITS: {item!r} is not name=rate[/burst]") from None
        if not name or rate < 0 or burst < 1:
            raise ConfigError(f"KL_RATE_LIMITS: {item!r} needs a name, rate >= 0 and burst >= 1")
        rates[name] = (rate, burst)
    return rates


class RateLimiter:
    """Token buckets per (operation, key), created on first use; bounded in memory."""

    def __init__(self, rates: Mapping[str, tuple[float, int]] | None = None,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self.rates = dict(parse_rates(os.environ.get("KL_RATE_LIMITS", "")) if rates is None else rates)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[tuple[str, str], TokenBucket] = {}

    def check(self, operation: str, key: str = "") -> float:
        """0.0 if allowed now, else the seconds to wait (the Retry-After)."""
        rate = self.rates.get(operation)
        if rate is None:
            return 0.0
        bucket = self._buckets.get((operation, key))
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # forgetting buckets only ever allows more
            bucket = self._buckets[(operation, key)] = TokenBucket(*rate)
        return bucket.take(self.clock())


def retry_after_header(wait: float) -> str:
    """Whole seconds, at least 1 (HTTP's Retry-After has no fractions)."""
    return str(max(1, math.ceil(wait)))


@dataclass(frozen=True)
class Quotas:
    """What one tenant may hold at once; 0 means unlimited."""

    services: int = 50
    instances: int = 200
    concurrent_builds: int = 5

    @classmethod
    def from_env(cls) -> Quotas:
        def num(name: str, default: int) -> int:
            try:
                return int(os.environ.get(name, default))
            except ValueError:
                raise ConfigError(f"{name} must be an integer") from None

        return cls(num("KL_QUOTA_SERVICES", cls.services),
                   num("KL_QUOTA_INSTANCES", cls.instances),
                   num("KL_QUOTA_CONCURRENT_BUILDS", cls.concurrent_builds))


def quota_problem(quotas: Quotas, resource: str, tenant: str, in_use: int) -> str | None:
    """Why one more ``resource`` for ``tenant`` is refused, or None if it fits."""
    limit = getattr(quotas, resource)
    if limit and in_use >= limit:
        return (f"quota exceeded: tenant {tenant!r} has {in_use} {resource.replace('_', ' ')} "
                f"(limit {limit})")
    return None


# --- HTTP middleware ---------------------------------------------------------------

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MANAGEMENT_BODY_LIMIT = 1024 * 1024  # a management object (service, trigger) is small


def management_middleware(limiter: RateLimiter, prefixes: tuple[str, ...] = ("/apis",),
                          body_limit: int = MANAGEMENT_BODY_LIMIT):
    """Rate limit ("manage") and body size limit on the management API's changes.

    Reads are not limited: they are cheap, and benchmarks poll them. A refused
    change gets 429 with Retry-After; a body over ``body_limit`` gets 413.
    """
    from aiohttp import web

    @web.middleware
    async def middleware(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.method in MUTATING and request.path.startswith(prefixes):
            size = request.content_length
            if size is not None and size > body_limit:
                return web.json_response(
                    {"error": f"request body too large: {size} bytes, limit {body_limit} bytes",
                     "problems": [{"where": "body", "reason": f"larger than {body_limit} bytes"}]},
                    status=413)
            wait = limiter.check("manage")
            if wait > 0:
                return rate_limited("manage", wait)
        return await handler(request)

    return middleware


def rate_limited(operation: str, wait: float, who: str = ""):  # type: ignore[no-untyped-def]
    """The 429 answer: JSON saying which limit, and Retry-After in whole seconds."""
    from aiohttp import web

    whose = f" for tenant {who!r}" if who else ""
    return web.json_response(
        {"error": f"rate limit of {operation!r}{whose} reached (KL_RATE_LIMITS); "
                  f"retry after {retry_after_header(wait)} s"},
        status=429, headers={"Retry-After": retry_after_header(wait)})
