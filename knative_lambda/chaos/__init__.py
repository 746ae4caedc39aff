"""Chaos Toolkit extension: break a target on purpose, check that it holds.

- :mod:`.actions`  faults (kill/pause/resume/restart parts, kill instances, link
                   latency/resets/blackhole/heal), the counting function, background load
- :mod:`.probes`   health, reachability, instances, the events ledger, builds, dead letters
- :mod:`.ledger`   events sent against events processed (pure balance)
- :mod:`.load`     bounded background load in threads; :mod:`.senders` one item of it
- :mod:`.summary`  journal -> summary (pure); :mod:`.run` find, validate, run, write
- :mod:`.commands` ``kl chaos list`` / ``kl chaos run``

Activities work through the ``Target`` protocol (:mod:`.context` finds it), so
the same experiment runs wherever a target implements the fault hooks.
"""
