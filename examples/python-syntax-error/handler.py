def handle(event):
    result = {"broken": True
    return result
