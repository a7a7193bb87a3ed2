package dev.keyway.android

import android.bluetooth.BluetoothAdapter
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.Context
import android.content.pm.PackageManager
import android.os.ParcelUuid
import android.util.Log
import dev.keyway.core.GattLayout
import dev.keyway.core.gattLayout
import dev.keyway.shell.GattLink
import dev.keyway.shell.Radio
import java.util.UUID
import java.util.concurrent.LinkedBlockingQueue
import java.util.concurrent.TimeUnit

/**
 * [Radio] over android.bluetooth: BluetoothLeScanner for Keyway adverts (service data under
 * the Keyway service UUID) and BluetoothGatt for the door's control point and response
 * characteristic. The core calls it from its worker threads, which block here while the
 * stack's callbacks (on binder threads) arrive. Fragmenting and the protocol stay in the core
 * ([dev.keyway.shell.GattBleShell] wraps this).
 */
class AndroidRadio private constructor(
    private val context: Context,
    private val adapter: BluetoothAdapter,
) : Radio {
    private val layout: GattLayout = gattLayout()
    private val service = ParcelUuid(UUID.fromString(layout.serviceUuid))

    @Volatile
    private var scan: ScanCallback? = null

    override fun startScan(report: (peer: String, payload: ByteArray, rssi: Int) -> Unit) {
        check(adapter.isEnabled) { "Bluetooth is off" }
        val scanner = adapter.bluetoothLeScanner ?: error("Bluetooth LE scanning is not available")
        val callback = object : ScanCallback() {
            override fun onScanResult(callbackType: Int, result: ScanResult) {
                val data = result.scanRecord?.getServiceData(service) ?: return
                report(result.device.address, data, result.rssi)
            }

            override fun onBatchScanResults(results: MutableList<ScanResult>) {
                for (r in results) onScanResult(ScanSettings.CALLBACK_TYPE_ALL_MATCHES, r)
            }

            override fun onScanFailed(errorCode: Int) {
                Log.w(TAG, "BLE scan failed: $errorCode")
            }
        }
        // Any service data under the Keyway UUID (empty data and mask match every payload);
        // a filter also keeps scanning allowed while the screen is off.
        val filter = ScanFilter.Builder().setServiceData(service, ByteArray(0), ByteArray(0)).build()
        val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
        scan?.let { scanner.stopScan(it) }
        scanner.startScan(listOf(filter), settings, callback)
        scan = callback
    }

    override fun stopScan() {
        val callback = scan ?: return
        scan = null
        if (adapter.isEnabled) adapter.bluetoothLeScanner?.stopScan(callback)
    }

    override fun connect(peer: String, timeoutMs: Long): GattLink =
        AndroidGattLink(layout).also { it.open(context, adapter.getRemoteDevice(peer), timeoutMs) }

    companion object {
        private const val TAG = "KeywayBle"

        /** The phone's radio, or null without Bluetooth LE (the core then unlocks via the cloud). */
        fun create(context: Context): AndroidRadio? {
            if (!context.packageManager.hasSystemFeature(PackageManager.FEATURE_BLUETOOTH_LE)) return null
            val manager = context.getSystemService(BluetoothManager::class.java) ?: return null
            val adapter = manager.adapter ?: return null
            return AndroidRadio(context.applicationContext, adapter)
        }
    }
}

/** One GATT connection to a door; every step waits for its callback with a deadline. */
private class AndroidGattLink(private val layout: GattLayout) : BluetoothGattCallback(), GattLink {
    /** Callback results, in arrival order, for the step that is waiting. */
    private sealed class Step {
        data class State(val status: Int, val state: Int) : Step()
        data class Mtu(val mtu: Int, val status: Int) : Step()
        data class Services(val status: Int) : Step()
        data class Descriptor(val status: Int) : Step()
        data class Written(val status: Int) : Step()
    }

    private val steps = LinkedBlockingQueue<Step>()
    private val inbox = LinkedBlockingQueue<ByteArray>()
    private val responseUuid = UUID.fromString(layout.responseUuid)
    private lateinit var gatt: BluetoothGatt
    private lateinit var controlPoint: BluetoothGattCharacteristic

    @Volatile
    private var lost: String? = null

    @Volatile
    override var attMtu: Int = 23
        private set

    fun open(context: Context, device: BluetoothDevice, timeoutMs: Long) {
        val deadline = System.nanoTime() + timeoutMs * 1_000_000
        gatt = device.connectGatt(context, false, this, BluetoothDevice.TRANSPORT_LE)
            ?: error("could not start a GATT connection")
        try {
            val up = await<Step.State>(deadline, "connect")
            check(up.status == BluetoothGatt.GATT_SUCCESS && up.state == BluetoothProfile.STATE_CONNECTED) {
                "connect failed (status ${up.status})"
            }
            // Fewer fragments per message with a larger MTU; keep 23 if the door says no.
            if (gatt.requestMtu(DESIRED_MTU)) {
                val mtu = await<Step.Mtu>(deadline, "MTU exchange")
                if (mtu.status == BluetoothGatt.GATT_SUCCESS) attMtu = mtu.mtu
            }
            check(gatt.discoverServices()) { "service discovery did not start" }
            check(await<Step.Services>(deadline, "service discovery").status == BluetoothGatt.GATT_SUCCESS) {
                "service discovery failed"
            }
            val svc = gatt.getService(UUID.fromString(layout.serviceUuid)) ?: error("not a Keyway door")
            controlPoint = svc.getCharacteristic(UUID.fromString(layout.controlPointUuid))
                ?: error("not a Keyway door (no control point)")
            val response = svc.getCharacteristic(responseUuid) ?: error("not a Keyway door (no response)")
            check(gatt.setCharacteristicNotification(response, true)) { "could not subscribe" }
            val cccd = response.getDescriptor(CCCD) ?: error("response characteristic cannot notify")
            cccd.value = BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE
            check(gatt.writeDescriptor(cccd)) { "could not subscribe" }
            check(await<Step.Descriptor>(deadline, "subscribe").status == BluetoothGatt.GATT_SUCCESS) {
                "subscribe failed"
            }
        } catch (e: Exception) {
            gatt.close()
            throw e
        }
    }

    override fun write(fragment: ByteArray) {
        lost?.let { error(it) }
        controlPoint.writeType = BluetoothGattCharacteristic.WRITE_TYPE_NO_RESPONSE
        controlPoint.value = fragment
        check(gatt.writeCharacteristic(controlPoint)) { "write refused by the stack" }
        // Android reports writes without response too; waiting paces the fragments.
        val done = await<Step.Written>(System.nanoTime() + WRITE_TIMEOUT_NS, "write")
        check(done.status == BluetoothGatt.GATT_SUCCESS) { "write failed (status ${done.status})" }
    }

    override fun nextNotification(timeoutMs: Long): ByteArray? {
        inbox.poll()?.let { return it }
        lost?.let { error(it) }
        return inbox.poll(timeoutMs, TimeUnit.MILLISECONDS) ?: lost?.let { error(it) }
    }

    override fun close() {
        try {
            gatt.disconnect()
        } finally {
            gatt.close()
        }
    }

    private inline fun <reified T : Step> await(deadline: Long, what: String): T {
        while (true) {
            lost?.takeIf { T::class != Step.State::class }?.let { error("$what: $it") }
            val left = deadline - System.nanoTime()
            val step = steps.poll(maxOf(left, 0), TimeUnit.NANOSECONDS) ?: error("$what timed out")
            if (step is T) return step
        }
    }

    override fun onConnectionStateChange(gatt: BluetoothGatt, status: Int, newState: Int) {
        if (newState == BluetoothProfile.STATE_DISCONNECTED) lost = "door disconnected (status $status)"
        steps.add(Step.State(status, newState))
    }

    override fun onMtuChanged(gatt: BluetoothGatt, mtu: Int, status: Int) {
        steps.add(Step.Mtu(mtu, status))
    }

    override fun onServicesDiscovered(gatt: BluetoothGatt, status: Int) {
        steps.add(Step.Services(status))
    }

    override fun onDescriptorWrite(gatt: BluetoothGatt, descriptor: BluetoothGattDescriptor, status: Int) {
        steps.add(Step.Descriptor(status))
    }

    override fun onCharacteristicWrite(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, status: Int) {
        steps.add(Step.Written(status))
    }

    override fun onCharacteristicChanged(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic) {
        if (characteristic.uuid == responseUuid) inbox.add(characteristic.value.copyOf())
    }

    /**
     * Android 13's form of the callback, which carries the value itself. Not in android.jar
     * 23, so this is not an `override` here, but on API 33+ it overrides the framework method
     * at run time (and the two-argument form above is then no longer called).
     */
    @Suppress("unused")
    fun onCharacteristicChanged(gatt: BluetoothGatt, characteristic: BluetoothGattCharacteristic, value: ByteArray) {
        if (characteristic.uuid == responseUuid) inbox.add(value.copyOf())
    }

    private companion object {
        /** Client Characteristic Configuration descriptor. */
        val CCCD: UUID = UUID.fromString("00002902-0000-1000-8000-00805f9b34fb")
        const val DESIRED_MTU = 185
        const val WRITE_TIMEOUT_NS = 5_000_000_000L
    }
}
