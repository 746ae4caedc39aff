"""Conformance function: async, counts the events it was given."""

import asyncio

SEEN = []


async def handle(event):
    await asyncio.sleep(0)
    SEEN.append(event)
    return {"count": len(SEEN)}
