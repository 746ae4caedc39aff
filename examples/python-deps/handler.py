import six


def handle(event):
    return {"six": six.__version__, "text": six.ensure_text(event.get("text", "ok"))}
