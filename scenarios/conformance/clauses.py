"""The platform contract as data (DESIGN §2): each clause a test checks.

Written once, iterated by ``kl conformance`` for its table; each test names its
clause with ``@pytest.mark.conformance("ID")``.
"""

CLAUSES: dict[str, str] = {
    "BUILD-COMPLETE": "build.start ends in build.complete carrying every contract field",
    "BUILD-FAILED": "code that does not compile ends in build.failed with the compiler's message and line",
    "BUILD-CACHED": "a second build.start for the same content is reported as cached",
    "BUILD-REBUILD": "rebuild.start forces a build even when cached",
    "BUILD-NAMES": "job name, service name and image follow the DNS-1123 naming rules",
    "INVOKE-HTTP": "a deployed function answers HTTP with {succeeded, contextId, eventEntries}",
    "INVOKE-SYNC": "responsetype=sync answers inline with a P.result CloudEvent",
    "EVENT-TRIGGER": "a parser.start event for the function is delivered and its reply emitted",
    "EVENT-FILTER": "a parser.start event for another tp or parser is not delivered",
    "EVENT-DEDUPE": "a duplicated event (same source and id) is processed once",
    "EVENT-ERROR": "a function that raises replies with P.error carrying its errorMessage",
    "EVENT-DLQ": "an unreachable subscriber is retried, then the event is dead-lettered, never dropped",
    "INGRESS-MALFORMED": "malformed events get 400 naming the problem and change nothing",
    "SCALE-ZERO": "an idle function scales to zero instances",
    "SCALE-COLD": "a request to a zero-scaled function succeeds (cold start)",
    "DELETE": "service.delete removes the service and its trigger",
}
