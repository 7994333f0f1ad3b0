#!/usr/bin/python3
"""slowservice: a TCP service for `make bench` scenario 6a that answers every request line after a
fixed delay, like a scanner that takes 50 ms per message. Loopback only.

    tools/bench/slowservice.py PORTFILE [DELAY_MS]

Listens on 127.0.0.1 (a free port, written to PORTFILE), serves any number of connections at once
(asyncio), answers each line with "OK <n>\\n" after DELAY_MS (default 50). Stopped by SIGTERM.
"""
import asyncio
import signal
import sys


async def main(portfile, delay):
    served = 0

    async def handle(reader, writer):
        nonlocal served
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                await asyncio.sleep(delay)
                served += 1
                writer.write(b"OK %d\n" % served)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    with open(portfile, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], (float(sys.argv[2]) if len(sys.argv) > 2 else 50.0) / 1000.0))
