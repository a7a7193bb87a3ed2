package dev.keyway.shell

import dev.keyway.core.KeyShell
import dev.keyway.core.KeywayException
import java.math.BigInteger
import java.security.KeyPair
import java.security.Signature
import java.security.interfaces.ECPublicKey

/**
 * The core's device key ([KeyShell]) over any java.security P-256 key pair. In the app the
 * private key lives in the Android Keystore (`KeystoreDeviceKey` makes it and never exports
 * it); on the JVM a software key stands in. Signatures are ECDSA P-256 with SHA-256 in DER,
 * which the core accepts and converts.
 */
class JcaKeyShell(private val keys: KeyPair) : KeyShell {
    private val publicPoint: ByteArray = uncompressedPoint(
        keys.public as? ECPublicKey ?: throw IllegalArgumentException("not an EC public key"),
    )

    override fun publicKey(): ByteArray = publicPoint.copyOf()

    override fun sign(message: ByteArray): ByteArray =
        try {
            Signature.getInstance("SHA256withECDSA").run {
                initSign(keys.private)
                update(message)
                sign()
            }
        } catch (e: Exception) {
            // A locked or invalidated hardware key, a provider error: the core reports it.
            throw KeywayException.Platform("device key: ${e.message ?: e.javaClass.simpleName}")
        }

    companion object {
        /** The 65-byte SEC1 uncompressed point (0x04 ‖ X ‖ Y) of a P-256 public key. */
        fun uncompressedPoint(key: ECPublicKey): ByteArray {
            require(key.params.curve.field.fieldSize == 256) { "not a P-256 key" }
            return byteArrayOf(4) + fixed32(key.w.affineX) + fixed32(key.w.affineY)
        }

        private fun fixed32(v: BigInteger): ByteArray {
            val raw = v.toByteArray() // big-endian, may carry a sign byte or be short
            val out = ByteArray(32)
            val n = minOf(raw.size, 32)
            System.arraycopy(raw, raw.size - n, out, 32 - n, n)
            return out
        }
    }
}
