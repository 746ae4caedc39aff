def handle(event):
    raise RuntimeError(f"this function always fails (event: {event!r})")
