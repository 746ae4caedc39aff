import time


def handle(event):
    seconds = float(event.get("sleep", 1.0)) if isinstance(event, dict) else 1.0
    time.sleep(min(seconds, 300.0))
    return {"slept": seconds}
