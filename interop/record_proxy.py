"""A recording TCP proxy for the interop suite: clients connect to LISTEN, traffic goes on to
the broker at TARGET, and every request frame a client sends is written to OUT_DIR as
`<client_id>-<api_key>-v<version>-<n>.bin` (the frame body after its length prefix; at most
64 KiB, at most PER_KEY files per client id, api key and version). These are the fuzz targets' seeds from real clients.

    python record_proxy.py LISTEN_PORT TARGET_HOST:TARGET_PORT OUT_DIR [PER_KEY]
"""
import asyncio
import collections
import os
import struct
import sys

MAX_SAVED = 64 * 1024


async def pipe(reader, writer, on_frame=None):
    try:
        if on_frame is None:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        else:
            while True:
                head = await reader.readexactly(4)
                (size,) = struct.unpack(">i", head)
                body = await reader.readexactly(size) if size > 0 else b""
                on_frame(body)
                writer.write(head + body)
                await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def main():
    listen, target, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    per_key = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    host, port = target.rsplit(":", 1)
    os.makedirs(out, exist_ok=True)
    saved = collections.Counter()

    def record(body):
        if len(body) < 4 or len(body) > MAX_SAVED:
            return
        key, version = struct.unpack(">hh", body[:4])
        client = "unknown"
        if len(body) >= 10:
            (n,) = struct.unpack(">h", body[8:10])
            if 0 <= n <= len(body) - 10:
                client = "".join(c if c.isalnum() else "_" for c in body[10 : 10 + n].decode("utf-8", "replace"))[:40]
        slot = (client, key, version)
        if saved[slot] >= per_key:
            return
        saved[slot] += 1
        with open(os.path.join(out, f"{client}-{key}-v{version}-{saved[slot]}.bin"), "wb") as f:
            f.write(body)

    async def handle(client_reader, client_writer):
        broker_reader, broker_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(pipe(client_reader, broker_writer, record), pipe(broker_reader, client_writer))

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", listen)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
