"""A firing consumer written with the official NATS Python client (nats-py),
not with signalbox's code: it subscribes to a subject, prints `ready` once the
server has the subscription, then prints each message it receives as one JSON
line {"subject", "headers", "body"} until it has seen COUNT of them.

Usage: python3 firing_consumer.py NATS_URL SUBJECT COUNT
"""

import asyncio
import json
import sys

import nats


async def main(url: str, subject: str, count: int) -> None:
    nc = await nats.connect(url)
    got = asyncio.Queue()

    async def on_message(msg):
        await got.put(msg)

    await nc.subscribe(subject, cb=on_message)
    await nc.flush()
    print("ready", flush=True)
    for _ in range(count):
        msg = await asyncio.wait_for(got.get(), timeout=30)
        print(
            json.dumps(
                {
                    "subject": msg.subject,
                    "headers": dict(msg.headers or {}),
                    "body": json.loads(msg.data),
                }
            ),
            flush=True,
        )
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
