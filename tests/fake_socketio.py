"""Stand-ins for python-socketio's client, to run the injected pool's code without a server."""

from __future__ import annotations

import queue
import threading
import time
from typing import ClassVar


class FakeEngine:
    """Stands in for engine.io's client: a send queue drained by a sender thread, as in python-engineio."""

    def __init__(self, seconds_per_packet=0.0):
        self.queue = queue.Queue()
        self.sent = []
        self.seconds_per_packet = seconds_per_packet
        self.write_loop_task = threading.Thread(target=self._send, daemon=True)
        self.write_loop_task.start()

    def _send(self):
        while True:
            packet = self.queue.get()
            if packet is None:
                self.queue.task_done()
                return
            time.sleep(self.seconds_per_packet)
            self.sent.append(packet)
            self.queue.task_done()


class FakeClient:
    """Stands in for socketio.Client: records connects, emits and disconnects."""

    made: ClassVar[list] = []
    refuse: ClassVar[bool] = False
    seconds_per_packet: ClassVar[float] = 0.0

    def __init__(self, **options):
        self.connected = False
        self.url = None
        self.eio = None
        self.goodbye = None  # what had been sent when disconnect() was called
        FakeClient.made.append(self)

    def connect(self, url, **options):
        if FakeClient.refuse:
            raise ConnectionError("refused")
        self.url = url
        self.eio = FakeEngine(FakeClient.seconds_per_packet)
        self.connected = True

    def emit(self, event, data):
        self.eio.queue.put((event, data))

    def disconnect(self):
        self.goodbye = list(self.eio.sent)
        self.connected = False
        self.eio.queue.put(None)
