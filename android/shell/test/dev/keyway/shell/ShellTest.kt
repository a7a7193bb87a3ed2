package dev.keyway.shell

import com.google.gson.JsonParser
import dev.keyway.core.Carry
import dev.keyway.core.CoreConfig
import dev.keyway.core.CoreObserver
import dev.keyway.core.GattReassembler
import dev.keyway.core.KeywayCore
import dev.keyway.core.KeywayException
import dev.keyway.core.Motion
import dev.keyway.core.coreVersion
import dev.keyway.core.decodeAdvert
import dev.keyway.core.gattFragment
import dev.keyway.core.gattLayout
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test
import java.io.File
import java.nio.file.Files
import java.security.KeyPairGenerator
import java.security.Signature
import java.security.spec.ECGenParameterSpec
import java.util.concurrent.CopyOnWriteArrayList
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** Port 9 on loopback refuses connections: the core must report "no network connection". */
const val NO_SERVER = "http://127.0.0.1:9"

fun softwareKey(): JcaKeyShell =
    JcaKeyShell(KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair())

/** Polls [read] until [ok] holds or [timeoutMs] passes. */
fun <T> eventually(what: String, timeoutMs: Long = 15_000, read: () -> T, ok: (T) -> Boolean): T {
    val deadline = System.nanoTime() + timeoutMs * 1_000_000
    while (true) {
        val v = read()
        if (ok(v)) return v
        if (System.nanoTime() > deadline) fail("timed out waiting for $what; last: $v")
        Thread.sleep(50)
    }
}

/**
 * The framework-free shell against the real core library (no server): events as JSON, the
 * typed view through [Screen], the platform BLE and key implementations in Kotlin, and the
 * core's GATT framing helpers.
 */
class ShellTest {
    private val dir: File = Files.createTempDirectory("keyway-shell").toFile()
    private val screens = CopyOnWriteArrayList<Screen>()
    private var shell: KeywayShell? = null

    @After
    fun tearDown() {
        shell?.close()
        dir.deleteRecursively()
    }

    private fun start(radio: Radio? = null, key: JcaKeyShell? = softwareKey()): KeywayShell =
        KeywayShell.start(NO_SERVER, dir.path, radio, key, post = { it.run() }, render = { screens.add(it) })
            .also { shell = it }

    private fun screen(s: KeywayShell) = Screen.of(s.view()!!)

    @Test
    fun eventsAreTheCoreJson() {
        fun parse(e: ShellEvent) = JsonParser.parseString(e.json())
        assertEquals("\"logout\"", ShellEvent.Logout.json())
        val login = parse(ShellEvent.Login("ada@example.com", "p\"w\\\n\u0001")).asJsonObject["login"].asJsonObject
        assertEquals("ada@example.com", login["email"].asString)
        assertEquals("p\"w\\\n\u0001", login["password"].asString)
        assertFalse(ShellEvent.Login("a", "secret").toString().contains("secret"))
        val walk = parse(ShellEvent.SetWalkUp("l1", true)).asJsonObject["set_walk_up"].asJsonObject
        assertEquals("l1", walk["lock"].asString)
        assertTrue(walk["enabled"].asBoolean)
        val at = parse(ShellEvent.SetLocation(52.5, 13.25, 1_700_000_000_000)).asJsonObject["set_location"].asJsonObject
        assertEquals(13.25, at["longitude"].asDouble, 0.0)
        assertEquals(1_700_000_000_000, at["fix_ms"].asLong)
    }

    @Test
    fun everyShellEventIsAcceptedByTheCore() {
        val s = start()
        eventually("ready", read = { screen(s) }) { it !is Screen.Starting }
        val events = listOf(
            ShellEvent.Refresh, ShellEvent.SelectOrg("o1"), ShellEvent.Unlock("l1"), ShellEvent.DismissUnlock,
            ShellEvent.SetWalkUp("l1", true), ShellEvent.SetLocation(1.0, 2.0, 3), ShellEvent.StopScan,
            ShellEvent.SetMotion(Motion.STILL), ShellEvent.SetCarry(Carry.COVERED),
            ShellEvent.Logout,
        )
        for (e in events) assertNull("$e refused", s.send(e))
    }

    @Test
    fun accelerometerSamplesBecomeTheWearersMotion() {
        val s = start()
        eventually("ready", read = { screen(s) }) { it !is Screen.Starting }
        assertEquals(Motion.UNKNOWN, s.view()!!.motion)
        assertNull(s.view()!!.pace)
        // Four seconds of strides at about 50 Hz: the phone bounces ±3 m/s² along gravity (z) at
        // 1.9 steps a second, in real time (the core stamps samples with its own clock).
        val start = System.nanoTime()
        while (System.nanoTime() - start < 4_000_000_000L) {
            val secs = (System.nanoTime() - start) / 1e9
            s.accelerometer(0.3, 0.0, 9.81 + 3.0 * Math.sin(2 * Math.PI * 1.9 * secs))
            Thread.sleep(20)
        }
        eventually("walking", read = { s.view()!!.motion }) { it == Motion.WALKING }
        // Every pace the strides produced was sent to the core before this carry change, and
        // the core applies events in order: once the carry shows, the view holds the walk's
        // last pace (read any sooner, a loaded machine may show an earlier estimate).
        s.proximity(true)
        eventually("events applied", read = { s.view()!!.carry }) { it == Carry.COVERED }
        // The steps set the pace: 1.9 steps/s at 0.5·1.9 − 0.3 = 0.65 m a step.
        val pace = s.view()!!.pace!!
        assertEquals(1.235, pace, 0.12)
        // Standing: the phone barely moves.
        for (i in 0 until 50) {
            s.accelerometer(0.3, 0.02 * Math.sin(i.toDouble()), 9.81)
            Thread.sleep(20)
        }
        eventually("still", read = { s.view()!!.motion }) { it == Motion.STILL }
        assertEquals(pace, s.view()!!.pace!!, 1e-9) // standing keeps the walk-up pace
        s.accelerometerStopped()
        eventually("unknown", read = { s.view()!!.motion }) { it == Motion.UNKNOWN }
        eventually("no pace", read = { s.view()!!.pace }) { it == null }
        assertEquals("{\"set_motion\":\"walking\"}", ShellEvent.SetMotion(Motion.WALKING).json())
    }

    @Test
    fun theProximitySensorBecomesHowThePhoneIsCarried() {
        val s = start()
        eventually("ready", read = { screen(s) }) { it !is Screen.Starting }
        assertEquals(Carry.UNKNOWN, s.view()!!.carry)
        s.proximity(true)
        eventually("covered", read = { s.view()!!.carry }) { it == Carry.COVERED }
        s.proximity(false)
        eventually("uncovered", read = { s.view()!!.carry }) { it == Carry.UNCOVERED }
        s.proximityStopped()
        eventually("unknown", read = { s.view()!!.carry }) { it == Carry.UNKNOWN }
        assertEquals("{\"set_carry\":\"uncovered\"}", ShellEvent.SetCarry(Carry.UNCOVERED).json())
    }

    @Test
    fun signInWithoutAServerShowsAClearError() {
        val s = start()
        val first = eventually("the sign-in screen", read = { screen(s) }) { it is Screen.SignIn } as Screen.SignIn
        assertFalse(first.busy)
        assertNull(first.error)
        assertNull(first.invite.error)
        assertNull(s.send(ShellEvent.Login("ada@example.com", "pw")))
        val failed = eventually("the login error", read = { screen(s) }) { (it as? Screen.SignIn)?.error != null }
        assertEquals("no network connection", (failed as Screen.SignIn).error)
        assertFalse(failed.busy)
        // The presenter drew the same thing from its render callback.
        eventually("a rendered error", read = { screens.lastOrNull() }) { (it as? Screen.SignIn)?.error != null }

        // A visitor invite without a server fails the same way, on the invite part of the screen.
        assertNull(s.send(ShellEvent.RedeemInvite("https://keyway.example/invite#JQKS11QVQ50SR3333TA749HDYM")))
        val invite = eventually("the invite error", read = { screen(s) }) { (it as? Screen.SignIn)?.invite?.error != null }
        assertEquals("no network connection", (invite as Screen.SignIn).invite.error)
        assertFalse(invite.invite.accepted)
    }

    @Test
    fun theCoreRefusesBadJsonWithATypedError() {
        val renders = AtomicInteger()
        val core = KeywayCore(
            CoreConfig(NO_SERVER, dir.path),
            object : CoreObserver {
                override fun onRender() {
                    renders.incrementAndGet()
                }
            },
        )
        core.use {
            try {
                it.sendEvent("{not json")
                fail("accepted bad JSON")
            } catch (e: KeywayException.InvalidEvent) {
                assertTrue(e.reason(), e.reason().isNotEmpty())
            }
            try {
                it.sendEvent("{\"no_such_event\": {}}")
                fail("accepted an unknown event")
            } catch (e: KeywayException.InvalidEvent) {
                assertTrue(e.reason().contains("no_such_event"))
            }
            eventually("ready", read = { it.view() }) { v -> v.ready }
            assertTrue(renders.get() > 0)
            // The typed view and the JSON view agree.
            val json = JsonParser.parseString(it.viewJson()).asJsonObject
            assertEquals(json["signed_in"].asBoolean, it.view().signedIn)
            assertTrue(json["places"].asJsonArray.isEmpty)
        }
    }

    @Test
    fun freeFunctionsAndGattFraming() {
        assertTrue(coreVersion().isNotEmpty())
        val info = decodeAdvert(byteArrayOf(1, 0xA1.toByte(), 0xB2.toByte(), 0xC3.toByte(), 0xD4.toByte(), 0xC5.toByte(), 0xAB.toByte(), 0xCD.toByte(), 0xEF.toByte(), 1))
        assertEquals("a1b2c3d4", info.shortId)
        assertEquals(-59, info.txPower.toInt())
        assertEquals(0xABCDEFu, info.proximityCode)
        assertTrue(info.walkUp)
        try {
            decodeAdvert(byteArrayOf(1, 2))
            fail("decoded garbage")
        } catch (_: KeywayException.InvalidEvent) {
        }
        val layout = gattLayout()
        assertEquals("6b657977-6179-4000-a000-000000000001", layout.serviceUuid)
        val message = ByteArray(300) { it.toByte() }
        val fragments = gattFragment(message, 23u)
        assertTrue(fragments.size > 1 && fragments.all { it.size <= 20 })
        GattReassembler().use { r ->
            val out = fragments.map { r.push(it) }
            assertTrue(out.dropLast(1).all { it == null })
            assertArrayEquals(message, out.last())
            try {
                r.push(fragments[1]) // a continuation with no first fragment
                fail("accepted an orphan fragment")
            } catch (_: KeywayException.InvalidEvent) {
            }
        }
    }

    @Test
    fun softwareKeySignsP256ThatJavaVerifies() {
        val pair = KeyPairGenerator.getInstance("EC").apply { initialize(ECGenParameterSpec("secp256r1")) }.generateKeyPair()
        val key = JcaKeyShell(pair)
        val point = key.publicKey()
        assertEquals(65, point.size)
        assertEquals(4.toByte(), point[0])
        val sig = key.sign("transcript".toByteArray())
        val verifier = Signature.getInstance("SHA256withECDSA").apply {
            initVerify(pair.public)
            update("transcript".toByteArray())
        }
        assertTrue(verifier.verify(sig))
    }

    /** A door that answers each message with the same bytes reversed, over tiny fragments. */
    private class EchoRadio : Radio {
        val scanning = LinkedBlockingQueue<String>()
        var reporter: ((String, ByteArray, Int) -> Unit)? = null
        val written = AtomicInteger()
        var closed = false

        override fun startScan(report: (String, ByteArray, Int) -> Unit) {
            reporter = report
            scanning.add("start")
        }

        override fun stopScan() {
            scanning.add("stop")
        }

        override fun connect(peer: String, timeoutMs: Long): GattLink {
            if (peer != "door-1") throw IllegalStateException("out of range")
            return object : GattLink {
                private val inbox = LinkedBlockingQueue<ByteArray>()
                private val reassembler = GattReassembler()
                override val attMtu = 23

                override fun write(fragment: ByteArray) {
                    written.incrementAndGet()
                    reassembler.push(fragment)?.let { msg -> gattFragment(msg.reversedArray(), 23u).forEach(inbox::add) }
                }

                override fun nextNotification(timeoutMs: Long): ByteArray? = inbox.poll(timeoutMs, TimeUnit.MILLISECONDS)

                override fun close() {
                    closed = true
                    reassembler.close()
                }
            }
        }
    }

    @Test
    fun kotlinBleShellScansAndExchangesForTheCore() {
        val radio = EchoRadio()
        val s = start(radio)
        eventually("ready", read = { screen(s) }) { it !is Screen.Starting }
        // The core asks the Kotlin radio to scan and shows it; adverts flow back into the core.
        assertNull(s.send(ShellEvent.StartScan))
        assertEquals("start", radio.scanning.poll(10, TimeUnit.SECONDS))
        eventually("scanning", read = { s.view()!! }) { it.scanning }
        radio.reporter!!("door-1", byteArrayOf(1, 0xA1.toByte(), 0xB2.toByte(), 0xC3.toByte(), 0xD4.toByte(), 0xC5.toByte(), 0, 0, 1, 1), -61)
        assertNull(s.send(ShellEvent.StopScan))
        assertEquals("stop", radio.scanning.poll(10, TimeUnit.SECONDS))
        eventually("scan stopped", read = { s.view()!! }) { !it.scanning }

        // The BleShell the core calls: connect, a message split into 20-byte writes, the reply joined.
        val ble = GattBleShell(radio, replyTimeoutMs = 2_000)
        val c = ble.connect("door-1")
        val message = ByteArray(200) { (it * 7).toByte() }
        assertArrayEquals(message.reversedArray(), ble.exchange(c, message))
        assertEquals(11, radio.written.get())
        ble.disconnect(c)
        assertTrue(radio.closed)
        // Failures reach the core as Platform errors, never as other exceptions.
        try {
            ble.connect("door-2")
            fail("connected to a missing door")
        } catch (e: KeywayException.Platform) {
            assertEquals("connect: out of range", e.reason())
        }
        try {
            ble.exchange(c, message)
            fail("exchanged on a closed link")
        } catch (e: KeywayException.Platform) {
            assertEquals("not connected", e.reason())
        }
    }

    @Test
    fun lockStatusLine() {
        val lock = dev.keyway.core.LockView("l", "Front door", true, false, true, true, true, (-61).toShort())
        assertEquals("online · nearby (-61 dBm) · walk-up on", lock.statusLine())
        assertEquals(UnlockState.UNCONFIRMED, UnlockState.of("unconfirmed"))
        assertTrue(UnlockState.of("denied").finished)
        assertFalse(UnlockState.of("something new").finished)
    }
}
