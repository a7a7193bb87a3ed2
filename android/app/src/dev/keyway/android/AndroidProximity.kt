package dev.keyway.android

import android.content.Context
import android.hardware.Sensor
import android.hardware.SensorEvent
import android.hardware.SensorEventListener
import android.hardware.SensorManager
import dev.keyway.shell.KeywayShell

/**
 * Forwards the proximity sensor (the one that darkens the screen during a call) to the core
 * while the screen scans: covered means a pocket or a bag, uncovered the hand, and walk-up
 * bounds the signal loss it allows for by that. Phones without the sensor send nothing and
 * walk-up allows for any carry.
 */
class AndroidProximity(context: Context, private val shell: () -> KeywayShell?) : SensorEventListener {
    private val sensors = context.getSystemService(Context.SENSOR_SERVICE) as? SensorManager
    private val sensor = sensors?.getDefaultSensor(Sensor.TYPE_PROXIMITY)
    private var running = false

    fun start() {
        if (running || sensor == null) return
        // The sensor reports changes only; the rate hint hardly matters.
        running = sensors?.registerListener(this, sensor, SensorManager.SENSOR_DELAY_NORMAL) == true
    }

    fun stop() {
        if (!running) return
        sensors?.unregisterListener(this)
        running = false
        shell()?.proximityStopped()
    }

    override fun onSensorChanged(event: SensorEvent) {
        val cm = event.values.firstOrNull() ?: return
        // Android's own rule (as for the in-call screen): near is below the maximum range and
        // below 5 cm; many sensors are binary and report either 0 or their maximum range.
        shell()?.proximity(cm >= 0f && cm < minOf(event.sensor.maximumRange, NEAR_CM))
    }

    override fun onAccuracyChanged(sensor: Sensor, accuracy: Int) = Unit

    private companion object {
        const val NEAR_CM = 5f
    }
}
