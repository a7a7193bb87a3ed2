"""Cross-language check: the uniffi-generated Python bindings load the core library and the
exported object API works outside Rust. Run through `shared/tests/python/run.sh` or the Rust
test `python_bindings` (which generate the bindings first); needs only python3.

Env: KEYWAY_PY_BINDINGS = directory holding keyway_shared.py and the shared library.
"""

import json
import math
import os
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.environ["KEYWAY_PY_BINDINGS"])

import keyway_shared as k  # noqa: E402


class Observer(k.CoreObserver):
    def __init__(self):
        self.renders = 0
        self.changed = threading.Condition()

    def on_render(self):
        with self.changed:
            self.renders += 1
            self.changed.notify_all()


def wait_for(core, observer, predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        view = json.loads(core.view_json())
        if predicate(view):
            return view
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"view never matched: {view}")
        with observer.changed:
            observer.changed.wait(min(remaining, 0.2))


class FakeKey(k.KeyShell):
    """A platform key that refuses to sign: exercises the foreign-trait path."""

    def public_key(self):
        return bytes([4] + [1] * 64)

    def sign(self, message):
        raise k.KeywayError.Platform("no secure hardware in tests")


class BindingsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def test_free_functions(self):
        self.assertTrue(k.core_version())
        info = k.decode_advert(bytes([1, 0xA1, 0xB2, 0xC3, 0xD4, 0xC5, 0xAB, 0xCD, 0xEF, 1]))
        self.assertEqual(info.short_id, "a1b2c3d4")
        self.assertEqual(info.tx_power, -59)
        self.assertEqual(info.proximity_code, 0xABCDEF)
        self.assertTrue(info.walk_up)
        with self.assertRaises(k.KeywayError.InvalidEvent):
            k.decode_advert(b"\x01\x02")

    def test_core_starts_signed_out_and_reports_offline_login(self):
        obs = Observer()
        # Port 9 on loopback refuses connections: the core must say "no network".
        core = k.KeywayCore(k.CoreConfig(api_base="http://127.0.0.1:9", data_dir=self.dir.name), obs)
        view = wait_for(core, obs, lambda v: v["ready"])
        self.assertFalse(view["signed_in"])
        with self.assertRaises(k.KeywayError.InvalidEvent):
            core.send_event("{not json")
        with self.assertRaises(k.KeywayError.InvalidEvent):
            core.send_event(json.dumps({"no_such_event": {}}))
        core.send_event(json.dumps({"login": {"email": "ada@example.com", "password": "pw"}}))
        view = wait_for(core, obs, lambda v: v["auth_error"] is not None)
        self.assertEqual(view["auth_error"], "no network connection")
        self.assertGreater(obs.renders, 0)
        # The typed view carries the same state as the JSON one.
        typed = core.view()
        self.assertIsInstance(typed, k.ViewModel)
        self.assertEqual(typed.auth_error, "no network connection")
        self.assertFalse(typed.signed_in)
        self.assertEqual(typed.places, [])
        self.assertIsNone(typed.unlock)
        self.assertFalse(typed.invite.busy)

    def test_platform_constructor_and_adverts(self):
        obs = Observer()
        core = k.KeywayCore.with_platform(
            k.CoreConfig(api_base="http://127.0.0.1:9", data_dir=self.dir.name), obs, None, FakeKey()
        )
        wait_for(core, obs, lambda v: v["ready"])
        # No BLE shell: adverts are accepted and ignored, scanning reports the missing radio.
        core.ble_advert("peer", b"\x01", -60)
        # Ranged distances to a door never heard, or failed rounds, are ignored too.
        core.ranging("peer", 0.8)
        core.ranging("peer", float("nan"))
        core.send_event('"start_scan"')
        view = wait_for(core, obs, lambda v: v["notice"] is not None)
        self.assertIn("Bluetooth", view["notice"])
        self.assertFalse(view["scanning"])

    def test_proximity_sensor_becomes_the_carry(self):
        obs = Observer()
        core = k.KeywayCore(k.CoreConfig(api_base="http://127.0.0.1:9", data_dir=self.dir.name), obs)
        view = wait_for(core, obs, lambda v: v["ready"])
        self.assertEqual(view["carry"], "unknown")
        core.proximity(True)
        wait_for(core, obs, lambda v: v["carry"] == "covered")
        self.assertEqual(core.view().carry, k.Carry.COVERED)
        core.proximity(False)
        wait_for(core, obs, lambda v: v["carry"] == "uncovered")
        core.proximity_stopped()
        wait_for(core, obs, lambda v: v["carry"] == "unknown")

    def test_steps_become_the_walking_pace(self):
        obs = Observer()
        core = k.KeywayCore(k.CoreConfig(api_base="http://127.0.0.1:9", data_dir=self.dir.name), obs)
        view = wait_for(core, obs, lambda v: v["ready"])
        self.assertIsNone(view["pace"])
        core.send_event('{"set_pace": 1.3}')
        wait_for(core, obs, lambda v: v["pace"] == 1.3)
        core.send_event('{"set_pace": null}')
        wait_for(core, obs, lambda v: v["pace"] is None)
        # Walk in real time (the core stamps samples with its clock): 1.8 steps a second, the
        # phone bouncing ±3 m/s² along gravity, sampled at about 50 Hz for 5 s.
        cadence, start = 1.8, time.monotonic()
        while (elapsed := time.monotonic() - start) < 5.0:
            core.accelerometer(0.2, 0.0, 9.81 + 3.0 * math.sin(2 * math.pi * cadence * elapsed))
            time.sleep(0.02)
        view = wait_for(core, obs, lambda v: v["pace"] is not None)
        # speed_for_cadence(1.8) = 1.08 m/s
        self.assertAlmostEqual(view["pace"], 1.08, delta=0.1)
        self.assertEqual(view["motion"], "walking")
        self.assertEqual(core.view().pace, view["pace"])  # typed and JSON agree
        core.accelerometer_stopped()
        wait_for(core, obs, lambda v: v["pace"] is None and v["motion"] == "unknown")


if __name__ == "__main__":
    unittest.main(verbosity=2)
