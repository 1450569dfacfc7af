#!/usr/bin/env python3
"""A TCP proxy that delays every chunk by DELAY_MS each way (a stand-in for
netem where the kernel has no sch_netem). usage: delay_proxy.py LISTEN_PORT TARGET_PORT DELAY_MS"""
import asyncio, sys

listen, target, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000.0

async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    async def sender():
        while True:
            due, data = await queue.get()
            if data is None:
                break
            await asyncio.sleep(max(0.0, due - loop.time()))
            writer.write(data)
            await writer.drain()
        writer.close()
    task = asyncio.create_task(sender())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))  # order kept: one queue per direction
    finally:
        queue.put_nowait((0, None))
        await task

async def handle(cr, cw):
    tr, tw = await asyncio.open_connection("127.0.0.1", target)
    await asyncio.gather(pipe(cr, tw), pipe(tr, cw), return_exceptions=True)

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()

asyncio.run(main())
