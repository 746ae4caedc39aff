"""Call a built Python function once: ``kl_invoke.py DIR ENTRY [EVENT_JSON]`` -> result JSON on stdout.

Standard library only, so it runs in any artifact (a venv, an image from a bare base).
"""

import asyncio
import importlib.util
import inspect
import json
import sys


def main() -> int:
    root, entry = sys.argv[1], sys.argv[2]
    event = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location("kl_function", f"{root}/{entry}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.handle(event)
    if inspect.isawaitable(result):
        result = asyncio.run(result) if inspect.iscoroutine(result) else asyncio.run(_wait(result))
    print(json.dumps(result, default=str))
    return 0


async def _wait(awaitable):
    return await awaitable


if __name__ == "__main__":
    sys.exit(main())
