import asyncio


async def handle(event):
    await asyncio.sleep(0)
    return {"message": "hello from async", "echo": event}
