package dev.keyway.shell

import com.google.gson.JsonObject
import com.google.gson.JsonParser
import dev.keyway.core.KeyShell
import dev.keyway.core.Route
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeTrue
import org.junit.Test
import java.io.File
import java.net.ServerSocket
import java.nio.file.Files
import java.util.concurrent.atomic.AtomicInteger

/**
 * The shell as a phone uses it, against a real `keyway-server --demo` and a real
 * `keyway-controller` door on the simulated radio (all on loopback): sign in, the door list,
 * a cloud unlock, a tap unlock over BLE where the Kotlin [GattBleShell] carries the handshake
 * and the Kotlin [JcaKeyShell] signs it, walk-up, a visitor invite link, sign-out.
 *
 * Needs KEYWAY_SERVER_BIN and KEYWAY_CONTROLLER_BIN (scripts/check-android sets them); skipped
 * without them.
 */
class JourneyTest {
    private val dir: File = Files.createTempDirectory("keyway-journey").toFile()
    private val processes = mutableListOf<Process>()
    private val closeables = mutableListOf<AutoCloseable>()

    @After
    fun tearDown() {
        closeables.asReversed().forEach { runCatching { it.close() } }
        processes.forEach { it.destroy(); it.waitFor() }
        dir.deleteRecursively()
    }

    private fun freePort() = ServerSocket(0).use { it.localPort }

    private fun spawn(vararg args: String, log: String): Process =
        ProcessBuilder(*args).redirectErrorStream(true).redirectOutput(File(dir, log)).start().also { processes += it }

    /** Starts the demo server; returns its base URL and the demo seed it prints. */
    private fun server(bin: String): Pair<String, JsonObject> {
        val port = freePort()
        val p = ProcessBuilder(bin, "serve", "--demo", "--listen", "127.0.0.1:$port", "--data-dir", File(dir, "server").path)
            .redirectError(File(dir, "server.log")).start().also { processes += it }
        val lines = p.inputStream.bufferedReader()
        val seed = StringBuilder()
        var depth = 0
        while (true) {
            val line = lines.readLine() ?: error("server exited; see ${dir}/server.log")
            if (depth == 0 && !line.startsWith("{")) continue
            depth += line.count { it == '{' } - line.count { it == '}' }
            seed.append(line)
            if (depth == 0) break
        }
        Thread { lines.forEachLine { } }.apply { isDaemon = true }.start() // keep stdout drained
        return "http://127.0.0.1:$port" to JsonParser.parseString(seed.toString()).asJsonObject
    }

    /** A key that counts its signatures, so the test sees the core sign through Kotlin. */
    private class CountingKey(private val inner: KeyShell) : KeyShell by inner {
        val signatures = AtomicInteger()

        override fun sign(message: ByteArray): ByteArray = inner.sign(message).also { signatures.incrementAndGet() }
    }

    @Test
    fun phoneJourneyOverTheKotlinShell() {
        val serverBin = System.getenv("KEYWAY_SERVER_BIN")
        val controllerBin = System.getenv("KEYWAY_CONTROLLER_BIN")
        assumeTrue(
            "KEYWAY_SERVER_BIN / KEYWAY_CONTROLLER_BIN not set: journey skipped",
            serverBin != null && controllerBin != null && File(serverBin).canExecute() && File(controllerBin).canExecute(),
        )
        val (api, seed) = server(serverBin!!)
        val hub = freePort()
        val provision = ProcessBuilder(
            controllerBin, "provision", "--server", api, "--token", seed["provisioning_token"].asString,
            "--data-dir", File(dir, "controller").path,
        ).redirectErrorStream(true).redirectOutput(File(dir, "provision.log")).start()
        assertEquals("controller provisioning failed", 0, provision.waitFor())
        spawn(controllerBin!!, "run", "--radio", "sim:127.0.0.1:$hub", "--data-dir", File(dir, "controller").path, log = "controller.log")

        // The hub is the controller's: wait until it accepts phones.
        val radio = eventually("the radio hub", read = { runCatching { SimRadio(hub, "bob") }.getOrNull() }) { it != null }!!
        closeables += radio
        radio.position(0.5, 0.0)
        val key = CountingKey(softwareKey())
        val screens = java.util.concurrent.CopyOnWriteArrayList<Screen>()
        val bob = KeywayShell.start(api, File(dir, "bob").path, radio, key, post = { it.run() }, render = { screens += it })
        closeables += bob
        fun home() = Screen.of(bob.view()!!) as? Screen.Home

        // Sign in: the core registers the Kotlin key's public key and fetches a credential for it.
        eventually("sign-in screen", read = { Screen.of(bob.view()!!) }) { it is Screen.SignIn }
        assertNull(bob.send(ShellEvent.Login("bob@acme.test", "bob-demo-password")))
        val front = seed["locks"].asJsonObject["Front door"].asString
        eventually("Front door online", read = { home() }) { h ->
            h != null && h.places.flatMap { it.locks }.any { it.id == front && it.online }
        }
        assertEquals("bob@acme.test", home()!!.account)
        eventually("a credential for the Kotlin key", read = { bob.view()!!.credential }) { it != null }

        // Not scanning, so the door was not heard: the tap goes through the cloud.
        assertNull(bob.send(ShellEvent.Unlock(front)))
        val cloud = eventually("the cloud unlock", read = { home()!!.unlock }) { it != null && it.state.finished }!!
        assertEquals("$cloud", UnlockState.GRANTED, cloud.state)
        assertEquals(Route.CLOUD, cloud.route)
        assertTrue(screens.any { it is Screen.Home && it.unlock?.state == UnlockState.GRANTED })
        assertEquals(0, key.signatures.get())
        assertNull(bob.send(ShellEvent.DismissUnlock))

        // Scan through the Kotlin radio until the door is heard, then tap: BLE, signed in Kotlin.
        assertNull(bob.send(ShellEvent.StartScan))
        eventually("Front door nearby", read = { home() }) { h -> h!!.places.flatMap { it.locks }.any { it.id == front && it.nearby } }
        assertTrue(radio.scansStarted.get() >= 1)
        assertNull(bob.send(ShellEvent.Unlock(front)))
        val ble = eventually("the BLE unlock", read = { home()!!.unlock }) { it != null && it.state.finished }!!
        assertEquals("$ble", UnlockState.GRANTED, ble.state)
        assertEquals(Route.BLE, ble.route)
        assertEquals("Front door", ble.lockName)
        assertTrue("the core signed through the Kotlin key", key.signatures.get() >= 1)
        assertTrue("HELLO and AUTH went out as GATT writes", radio.writes.get() >= 2)
        assertTrue("CHALLENGE and RESULT came back as notifications", radio.notifications.get() >= 2)
        assertNull(bob.send(ShellEvent.DismissUnlock))
        eventually("banner dismissed", read = { home()!!.unlock }) { it == null }

        // Walk-up: step away, enable it for the door, walk back; it opens on arrival.
        radio.position(12.0, 0.0)
        assertNull(bob.send(ShellEvent.SetWalkUp(front, true)))
        eventually("walk-up on", read = { home() }) { h -> h!!.places.flatMap { it.locks }.any { it.id == front && it.walkUpEnabled } }
        val signedBefore = key.signatures.get()
        radio.script(Triple(0L, 12.0, 0.0), Triple(6_000L, 0.4, 0.0))
        val walk = eventually("the walk-up unlock", timeoutMs = 30_000, read = { home()!!.unlock }) {
            it != null && it.walkUp && it.state.finished
        }!!
        assertEquals("$walk", UnlockState.GRANTED, walk.state)
        assertTrue(key.signatures.get() > signedBefore)
        assertNull(bob.send(ShellEvent.SetWalkUp(front, false)))
        assertNull(bob.send(ShellEvent.StopScan))

        // A visitor redeems the demo invite on another phone: no password, a guest session.
        val visitor = KeywayShell.start(api, File(dir, "visitor").path, null, softwareKey(), post = { it.run() }, render = { })
        closeables += visitor
        eventually("visitor sign-in screen", read = { Screen.of(visitor.view()!!) }) { it is Screen.SignIn }
        assertNull(visitor.send(ShellEvent.RedeemInvite("keyway://invite?code=${seed["visitor_invite_code"].asString}")))
        val guest = eventually("guest session", read = { Screen.of(visitor.view()!!) }) { it is Screen.Home } as Screen.Home
        assertTrue(guest.guest)
        assertTrue(visitor.view()!!.invite.accepted)

        // Sign out wipes the session.
        assertNull(bob.send(ShellEvent.Logout))
        val out = eventually("signed out", read = { Screen.of(bob.view()!!) }) { it is Screen.SignIn } as Screen.SignIn
        assertNull(out.error)
        assertFalse(bob.view()!!.signedIn)
    }
}
